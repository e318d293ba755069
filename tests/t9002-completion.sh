#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='shell completions ask the binary for commands and options'
. "$(dirname "$0")/lib.sh"

COMP=$SRC_DIRECTORY/completions

# complete_bash WORD...: completes the last word of "ckpt WORD..." with
# completions/ckpt.bash, one candidate per line in "out".
cat >complete-bash <<EOF
. "$COMP/ckpt.bash"
COMP_WORDS=(ckpt "\$@")
COMP_CWORD=\$#
_ckpt
printf '%s\n' "\${COMPREPLY[@]}"
EOF

complete_bash() {
	bash ./complete-bash "$@" >out
}

test_expect_success 'bash: the script is valid bash' '
	bash -n "$COMP/ckpt.bash"
'

test_expect_success 'bash: every command is offered at the first word' '
	complete_bash "" &&
	{ ckpt --list-commands && echo help; } | sort >expect &&
	sort out >actual &&
	test_cmp expect actual
'

test_expect_success 'bash: a prefix selects commands' '
	complete_bash ver &&
	echo verify >expect &&
	test_cmp expect out
'

test_expect_success 'bash: global options before the command' '
	complete_bash --js &&
	echo --json >expect &&
	test_cmp expect out &&
	complete_bash --ver &&
	printf "%s\n" --verbose --version >expect &&
	sort out >actual &&
	test_cmp expect actual
'

test_expect_success 'bash: the command is found after -C DIR' '
	complete_bash -C /tmp l &&
	printf "%s\n" latest log ls >expect &&
	test_cmp expect out
'

test_expect_success 'bash: options of each command come from --completion-helper' '
	for c in $(ckpt --list-commands); do
		complete_bash "$c" -- &&
		ckpt "$c" --completion-helper | sort >expect &&
		sort out >actual &&
		test_cmp expect actual || exit 1
	done
'

test_expect_success 'bash: an option prefix is completed, with "=" for values' '
	complete_bash ls --js &&
	echo --json >expect &&
	test_cmp expect out &&
	complete_bash ls --sto &&
	echo --store= >expect &&
	test_cmp expect out
'

test_expect_success 'bash: help completes command names' '
	complete_bash help in &&
	printf "%s\n" init inspect >expect &&
	test_cmp expect out
'

test_expect_success 'bash: files after a command and after -C' '
	mkdir -p dir && : >dir/model.safetensors &&
	complete_bash inspect dir/mo &&
	echo dir/model.safetensors >expect &&
	test_cmp expect out &&
	complete_bash -C di &&
	echo dir >expect &&
	test_cmp expect out
'

# zsh cannot complete outside an interactive shell: run _ckpt with compadd
# and _files replaced by functions that print their candidates.
cat >complete-zsh <<EOF
compadd() {
	while [[ \$1 == -* ]]; do
		[[ \$1 == -- ]] && { shift; break; }
		[[ \$1 == -S ]] && shift
		shift
	done
	print -l -- "\$@"
}
_files() { print -l -- FILES; }
compset() { PREFIX=\${PREFIX#*=}; }
words=(ckpt "\$@")
CURRENT=\$#words
PREFIX=\${words[CURRENT]}
. "$COMP/_ckpt"
EOF

complete_zsh() {
	zsh -f ./complete-zsh "$@" >out
}

if command -v zsh >/dev/null 2>&1; then
	test_expect_success 'zsh: the script is valid zsh' 'zsh -n "$COMP/_ckpt"'

	test_expect_success 'zsh: commands at the first word' '
		complete_zsh "" &&
		{ ckpt --list-commands && echo help; } | sort >expect &&
		sort out >actual &&
		test_cmp expect actual
	'

	test_expect_success 'zsh: options of a command, after -C DIR' '
		complete_zsh -C /tmp ls --x &&
		ckpt ls --completion-helper | sort >expect &&
		sort out >actual &&
		test_cmp expect actual
	'

	test_expect_success 'zsh: files for a value and an argument' '
		complete_zsh inspect x &&
		echo FILES >expect &&
		test_cmp expect out &&
		complete_zsh --store &&
		grep -x -e --store= out
	'
else
	test_count=$((test_count + 1))
	say "ok $test_count # SKIP zsh completion (zsh is not installed)"
fi

# fish completes outside an interactive shell: complete -C.
complete_fish() {
	fish -c "source '$COMP/ckpt.fish'; complete -C'ckpt $1'" |
		cut -f1 >out
}

if command -v fish >/dev/null 2>&1; then
	test_expect_success 'fish: the script is valid fish' '
		fish -n "$COMP/ckpt.fish"
	'

	test_expect_success 'fish: commands at the first word' '
		complete_fish "" &&
		{ ckpt --list-commands && echo help; } | sort >expect &&
		sort out >actual &&
		test_cmp expect actual
	'

	test_expect_success 'fish: a prefix, and help' '
		complete_fish ver &&
		echo verify >expect &&
		test_cmp expect out &&
		complete_fish "help in" &&
		printf "%s\n" init inspect >expect &&
		test_cmp expect out
	'

	test_expect_success 'fish: options of a command, after -C DIR' '
		complete_fish "-C /tmp ls --js" &&
		echo --json >expect &&
		test_cmp expect out
	'
else
	test_count=$((test_count + 1))
	say "ok $test_count # SKIP fish completion (fish is not installed)"
fi

test_done
