# bash completion for heapinspect(1)                     -*- shell-script -*-
# SPDX-License-Identifier: MIT
# The options of each command are those its --help lists (tests/install
# keeps them in step).

_heapinspect()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" opts i
	local cmds="info trim snapshot watch diff trend plot"

	# The command is the first argument (info may follow options).
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		info | trim | snapshot | watch | diff | trend | plot)
			cmd=${COMP_WORDS[i]}
			break
			;;
		esac
	done

	case $prev in
	-p | --pid)
		COMPREPLY=($(compgen -W "$(ps -eo pid= 2>/dev/null)" -- "$cur"))
		return
		;;
	-o | --output | --pidfile | --debuginfo-path)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--method)
		COMPREPLY=($(compgen -W "auto read call" -- "$cur"))
		return
		;;
	--format)
		COMPREPLY=($(compgen -W "jsonl openmetrics" -- "$cur"))
		return
		;;
	--unit)
		COMPREPLY=($(compgen -W "$(systemctl list-units --type=service \
			--no-legend --plain 2>/dev/null | while read -r u _; do
				echo "${u%.service}"; done)" -- "$cur"))
		return
		;;
	--name)
		COMPREPLY=($(compgen -W "$(ps -eo comm= 2>/dev/null)" -- "$cur"))
		return
		;;
	--interval | --duration | --count | --attempts | --stop-timeout | \
		--timeout | --pad | --lines | --min-growth | --segment)
		return
		;;
	esac

	case $cmd in
	"" | info)
		opts="-p --pid --json --bytes --debuginfo-path --explain
		      --no-cache --attempts --stop-timeout --method --timeout
		      -h --help -V --version"
		;;
	trim)
		opts="-p --pid --pad --json --bytes --debuginfo-path --timeout
		      --stop-timeout -h --help"
		;;
	snapshot)
		opts="-p --pid -o --output --debuginfo-path --attempts
		      --stop-timeout -h --help"
		;;
	watch)
		opts="-p --pid --unit --pidfile --name --interval --count
		      --duration -o --output --format --debuginfo-path
		      --attempts --stop-timeout -h --help"
		;;
	diff)
		opts="--json --bytes --force --lines -h --help"
		;;
	trend)
		opts="--json --min-growth --segment -h --help"
		;;
	plot)
		opts="-o --output -h --help"
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	elif [[ -z $cmd && $COMP_CWORD -eq 1 ]]; then
		COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
	elif [[ $cmd == diff || $cmd == trend || $cmd == plot ]]; then
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -F _heapinspect heapinspect
