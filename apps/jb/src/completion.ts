// `jb completion bash|zsh|fish`: completion scripts written from the
// commands' own definitions, so a new option completes without a change
// here. Job ids complete from `jb list -q` (the daemon the shell's
// JOBBER_ADDR/JOBBER_HOME point at); `jb start` completes the job's command
// as the shell would complete a command.
import type { ArgsDef, CommandDef } from "citty";
import { UsageError } from "./failure";

export const SHELLS = ["bash", "zsh", "fish"] as const;

interface CommandShape {
  name: string;
  description: string;
  /** Long option names, with whether each takes a value, and its one-letter alias. */
  options: { name: string; takesValue: boolean; short?: string; description: string }[];
  /** What its positional arguments are. */
  operands: "ids" | "command" | "shells" | "none";
}

// biome-ignore lint/suspicious/noExplicitAny: each command has its own args type; only the shape is read.
function shapeOf(name: string, command: CommandDef<any>): CommandShape {
  const args = (command.args ?? {}) as ArgsDef;
  const options = Object.entries(args).flatMap(([option, arg]) =>
    arg.type === "positional"
      ? []
      : [
          {
            name: option,
            takesValue: arg.type === "string",
            ...("alias" in arg && typeof arg.alias === "string" ? { short: arg.alias } : {}),
            description: arg.description ?? "",
          },
        ],
  );
  const operands =
    "id" in args || "ids" in args
      ? "ids"
      : "command" in args
        ? "command"
        : "shell" in args
          ? "shells"
          : "none";
  const meta = command.meta as { description?: string } | undefined;
  return { name, description: meta?.description ?? "", options, operands };
}

const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

function bash(commands: CommandShape[]): string {
  const cases = commands
    .map((command) => {
      const words = command.options.flatMap((o) => [`--${o.name}`, ...(o.short ? [`-${o.short}`] : [])]);
      const valued = command.options
        .filter((o) => o.takesValue)
        .flatMap((o) => [`--${o.name}`, ...(o.short ? [`-${o.short}`] : [])]);
      const operand = {
        ids: `COMPREPLY=($(compgen -W "$(jb list -q 2>/dev/null)" -- "$cur"))`,
        command: `if [[ $seen_command == 1 ]]; then COMPREPLY=($(compgen -f -- "$cur")); else COMPREPLY=($(compgen -c -- "$cur")); fi`,
        shells: `COMPREPLY=($(compgen -W "${SHELLS.join(" ")}" -- "$cur"))`,
        none: "COMPREPLY=()",
      }[command.operands];
      return `    ${command.name})
      case "$prev" in ${valued.length > 0 ? `${valued.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return;;` : "__none__) ;;"} esac
      if [[ $cur == -* && $seen_command == 0 ]]; then COMPREPLY=($(compgen -W "${words.join(" ")}" -- "$cur")); return; fi
      ${operand};;`;
    })
    .join("\n");
  return `# jb completion for bash: source <(jb completion bash)
_jb() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} sub="" seen_command=0 i
  for ((i = 1; i < COMP_CWORD; i++)); do
    local word=\${COMP_WORDS[i]}
    if [[ -z $sub && $word != -* ]]; then sub=$word
    elif [[ $sub == start && ( $word == -- || ( $word != -* && \${COMP_WORDS[i-1]} != -[ew] && \${COMP_WORDS[i-1]} != --* ) ) ]]; then seen_command=1
    fi
  done
  if [[ -z $sub ]]; then
    COMPREPLY=($(compgen -W "${commands.map((c) => c.name).join(" ")} help --addr --home --help --version" -- "$cur"))
    return
  fi
  case "$sub" in
${cases}
  esac
}
complete -F _jb jb
`;
}

function zsh(commands: CommandShape[]): string {
  const describe = commands.map((c) => `    ${quote(`${c.name}:${c.description}`)}`).join("\n");
  const cases = commands
    .map((command) => {
      const specs = command.options.map((o) => {
        const body = `[${o.description.replaceAll("]", "\\]").replaceAll("'", "")}]${o.takesValue ? ":value:_files" : ""}`;
        return o.short
          ? `${quote(`(-${o.short} --${o.name})`)}{-${o.short},--${o.name}}${quote(body)}`
          : quote(`--${o.name}${body}`);
      });
      const operand = {
        ids: `'*:job id:_jb_ids'`,
        command: `'*::command:_normal'`,
        shells: `'1:shell:(${SHELLS.join(" ")})'`,
        none: "",
      }[command.operands];
      return `    ${command.name}) _arguments -s ${[...specs, operand].filter(Boolean).join(" ")} ;;`;
    })
    .join("\n");
  return `#compdef jb
# jb completion for zsh: jb completion zsh > "\${fpath[1]}/_jb"
_jb_ids() { local -a ids; ids=(\${(f)"$(jb list -q 2>/dev/null)"}); _describe 'job id' ids; }
_jb() {
  local -a commands
  commands=(
${describe}
  )
  if (( CURRENT == 2 )); then _describe command commands; return; fi
  local sub=\${words[2]}
  shift words; (( CURRENT-- ))
  case $sub in
${cases}
  esac
}
compdef _jb jb
`;
}

function fish(commands: CommandShape[]): string {
  const names = commands.map((c) => c.name).join(" ");
  const lines = commands.flatMap((command) => {
    const when = `__fish_seen_subcommand_from ${command.name}`;
    const options = command.options.map(
      (o) =>
        `complete -c jb -n ${quote(when)} -l ${o.name}${o.short ? ` -s ${o.short}` : ""}${o.takesValue ? " -r" : ""} -d ${quote(o.description)}`,
    );
    const operand = {
      ids: [`complete -c jb -n ${quote(when)} -f -a '(jb list -q 2>/dev/null)'`],
      command: [`complete -c jb -n ${quote(when)} -a '(__fish_complete_subcommand --fcs-skip=2)'`],
      shells: [`complete -c jb -n ${quote(when)} -f -a ${quote(SHELLS.join(" "))}`],
      none: [],
    }[command.operands];
    return [
      `complete -c jb -n "not __fish_seen_subcommand_from ${names}" -f -a ${command.name} -d ${quote(command.description)}`,
      ...options,
      ...operand,
    ];
  });
  return `# jb completion for fish: jb completion fish > ~/.config/fish/completions/jb.fish
complete -c jb -f
${lines.join("\n")}
`;
}

export function completionScript(
  shell: string | undefined,
  // biome-ignore lint/suspicious/noExplicitAny: each command has its own args type; only the shape is read.
  commands: Record<string, CommandDef<any>>,
): string {
  const shapes = Object.entries(commands).map(([name, command]) => shapeOf(name, command));
  switch (shell) {
    case "bash":
      return bash(shapes);
    case "zsh":
      return zsh(shapes);
    case "fish":
      return fish(shapes);
    default:
      throw new UsageError(
        `jb completion needs a shell: ${SHELLS.join(", ")} (got ${shell === undefined ? "none" : JSON.stringify(shell)})`,
      );
  }
}
