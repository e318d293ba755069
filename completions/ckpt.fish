# SPDX-License-Identifier: MIT
#
# Fish completion for ckpt.  It knows nothing itself: commands come from
# "ckpt --list-commands", options from "ckpt [<command>] --completion-helper"
# (a trailing "=" marks an option that takes a value).  Installed as
# fish/vendor_completions.d/ckpt.fish.

# Prints the command word of the line being completed, if there is one.
function __ckpt_command
	set -l tokens (commandline -opc)
	set -e tokens[1]
	set -l skip 0
	for t in $tokens
		if test $skip = 1
			set skip 0
			continue
		end
		switch $t
			case -C --store
				set skip 1
			case '-*'
			case '*'
				echo $t
				return 0
		end
	end
	return 1
end

function __ckpt_no_command
	not __ckpt_command >/dev/null
end

function __ckpt_wants_option
	string match -q -- '-*' (commandline -ct)
end

function __ckpt_options
	set -l cmd (__ckpt_command)
	ckpt $cmd --completion-helper 2>/dev/null
end

complete -c ckpt -f -n '__ckpt_no_command; and not __ckpt_wants_option' \
	-a '(ckpt --list-commands 2>/dev/null) help'
complete -c ckpt -f -n '__fish_seen_subcommand_from help' \
	-a '(ckpt --list-commands 2>/dev/null)'
complete -c ckpt -n '__ckpt_wants_option' -a '(__ckpt_options)'
