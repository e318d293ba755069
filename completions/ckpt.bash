# SPDX-License-Identifier: MIT
#
# Bash completion for ckpt.  It knows nothing itself: commands come from
# "ckpt --list-commands", options from "ckpt [<command>] --completion-helper"
# (a trailing "=" marks an option that takes a value), so it cannot drift
# from the binary.  Installed as bash-completion/completions/ckpt.

_ckpt() {
	local cur prev cmd= i w ckpt=${COMP_WORDS[0]}

	cur=${COMP_WORDS[COMP_CWORD]}
	prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()

	# The command is the first word that is not a global option or the
	# value of -C/--store ("--store=x" arrives as "--store" "=" "x").
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-C|--store)
			((i++))
			[[ ${COMP_WORDS[i]} == = ]] && ((i++))
			;;
		-*) ;;
		*) cmd=$w; break ;;
		esac
	done

	# A value: of -C/--store or any "--opt=", complete file names.
	if [[ $prev == -C || $prev == --store || $cur == = ||
	    ($prev == = && ${COMP_WORDS[COMP_CWORD - 2]} == --*) ]]; then
		[[ $cur == = ]] && cur=
		COMPREPLY=($(compgen -f -- "$cur"))
		compopt -o filenames 2>/dev/null
		return 0
	fi

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W \
			    "$("$ckpt" --completion-helper 2>/dev/null)" -- "$cur"))
		else
			COMPREPLY=($(compgen -W \
			    "$("$ckpt" --list-commands 2>/dev/null) help" -- "$cur"))
		fi
	elif [[ $cmd == help ]]; then
		COMPREPLY=($(compgen -W \
		    "$("$ckpt" --list-commands 2>/dev/null)" -- "$cur"))
	elif [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W \
		    "$("$ckpt" "$cmd" --completion-helper 2>/dev/null)" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
		compopt -o filenames 2>/dev/null
	fi
	# "--opt=" wants its value right after the "=".
	if [[ ${#COMPREPLY[@]} == 1 && ${COMPREPLY[0]} == *= ]]; then
		compopt -o nospace 2>/dev/null
	fi
	return 0
}

complete -F _ckpt ckpt
