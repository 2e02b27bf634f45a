# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_virt_hook_global_optspecs
    string join \n plugin-dir= hooks-dir= config= v/verbose q/quiet h/help V/version
end

function __fish_virt_hook_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_virt_hook_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_virt_hook_using_subcommand
    set -l cmd (__fish_virt_hook_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c virt-hook -n "__fish_virt_hook_needs_command" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_needs_command" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_needs_command" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_needs_command" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -s h -l help -d 'Print help'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -s V -l version -d 'Print version'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "drivers" -d 'List the loaded drivers with their operation tables, and the plugins that failed to load'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "run" -d 'Run the hook scripts of one event, as libvirt would. Exit 0 when the operation may go on, 1 when it is refused, 2 for a bad event'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "plan" -d 'Print the hook scripts an event would run, in order; runs nothing'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "demo" -d 'Play a whole domain lifecycle on a bundled example hooks directory, through the real runner and plugins'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "check" -d 'Audit the hooks directory, the plugins and the configuration without running anything. Exit 0 when clean, 1 when anything is wrong'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "log" -d 'Print the latest hook script runs from the audit log, oldest first; reads only'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "config" -d 'Print the effective configuration and where each value came from'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "dispatch" -d 'Run the per-object scripts of an event as libvirt\'s hook would: `<hooks>/<driver>.d/<object>/<op>/<subop>`'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "install" -d 'Make virt-hook libvirt\'s hook script for some drivers (all loaded ones by default): `<hooks>/<driver>` becomes a link to virt-hook'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "uninstall" -d 'Remove virt-hook as libvirt\'s hook script (only links to, or copies of, virt-hook) and put back what `install --force` kept'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "completions" -d 'Print the completion script for SHELL on stdout'
complete -c virt-hook -n "__fish_virt_hook_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand drivers" -l format -d 'Output format' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand drivers" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand drivers" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand drivers" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand drivers" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand drivers" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand drivers" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -l input -d 'The document for the scripts\' stdin: a file, or `-` for standard input (`run` reads standard input without it when it is not a terminal)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -l timeout -d 'Per-script timeout for this call, as in the configuration: seconds (`90`, `1.5`) or with a unit (`500ms`, `90s`, `5m`); 0 means none' -r
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -l format -d 'Output format: text prints a filter\'s resulting document on stdout; json prints the whole outcome' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -l input -d 'The document for the scripts\' stdin: a file, or `-` for standard input (`run` reads standard input without it when it is not a terminal)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -l layout -d 'Which scripts to list (default: per-object where `<hooks>/<driver>` is virt-hook, as that hook will run them; else the configuration\'s layout)' -r -f -a "libvirt\t'libvirt\'s: `<hooks>/<driver>`, then `<hooks>/<driver>.d/*`'
per-object\t'Only `<hooks>/<driver>.d/<object>/<op>/<subop>`: virt-hook as libvirt\'s hook'
both\t'libvirt\'s scripts, then the per-object ones'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -l format -d 'Output format: text is one path per line; json adds argv, the environment, the input size and the skipped files' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -l keep -d 'Write the example hooks directory, the documents and the configuration under DIR and keep them; each event is printed with the `run` command that replays it' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -l format -d 'Output format: json prints one array of the events played, each with its outcome as `run --format json` prints it' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -l layout -d 'Which scripts each driver runs (default: per-object where `<hooks>/<driver>` is virt-hook, as that hook will run them; else the configuration\'s layout)' -r -f -a "libvirt\t'libvirt\'s: `<hooks>/<driver>`, then `<hooks>/<driver>.d/*`'
per-object\t'Only `<hooks>/<driver>.d/<object>/<op>/<subop>`: virt-hook as libvirt\'s hook'
both\t'libvirt\'s scripts, then the per-object ones'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -l format -d 'Output format' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -s n -l lines -d 'Show the latest N records' -r
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l driver -d 'Only this driver\'s records' -r
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l object -d 'Only this object\'s records (a domain, a network...)' -r
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l since -d 'Only records since TIME: ISO-8601 UTC (2024-05-01T10:00:00Z, 2024-05-01) or an age (30m, 1h, 2d)' -r
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l file -d 'Read this file instead of the configured audit log' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l format -d 'Output format: text is one line per record; json is the records as an array' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -l failed -d 'Only failed scripts and refused events'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand log" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand config" -l format -d 'Output format' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand config" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand config" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand config" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand config" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand config" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand dispatch" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand dispatch" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand dispatch" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand dispatch" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand dispatch" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand dispatch" -s h -l help -d 'Print help'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l format -d 'Output format: json prints each change (done or, with --dry-run, planned) and what was refused' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l libvirt -d 'Install for libvirt (the only daemon supported so far)'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l copy -d 'Copy the executable instead of linking to it'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l force -d 'Replace existing hook scripts that are not virt-hook; each is kept as `<driver>.virt-hook-backup`'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -l dry-run -d 'Print what would change; change nothing'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -l format -d 'Output format: json prints each change (done or, with --dry-run, planned) and what was refused' -r -f -a "text\t'Readable text'
json\t'One JSON document'"
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -l libvirt -d 'Uninstall from libvirt (the only daemon supported so far)'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -l dry-run -d 'Print what would change; change nothing'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand uninstall" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand completions" -l plugin-dir -d 'Look for driver plugins in DIR first (repeatable); then VIRT_HOOKS_PLUGIN_PATH, the configuration\'s plugin_path, the executable\'s directory and the system plugin directory (--version)' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand completions" -l hooks-dir -d 'The hooks directory (or VIRT_HOOKS_DIR) [default: the configuration\'s, else /etc/libvirt/hooks]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand completions" -l config -d 'The configuration file (or VIRT_HOOKS_CONFIG) [default: /etc/virt-hooks/virt-hooks.toml, if it exists]' -r -F
complete -c virt-hook -n "__fish_virt_hook_using_subcommand completions" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand completions" -s q -l quiet -d 'No warnings on the terminal, only errors'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "drivers" -d 'List the loaded drivers with their operation tables, and the plugins that failed to load'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "run" -d 'Run the hook scripts of one event, as libvirt would. Exit 0 when the operation may go on, 1 when it is refused, 2 for a bad event'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "plan" -d 'Print the hook scripts an event would run, in order; runs nothing'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "demo" -d 'Play a whole domain lifecycle on a bundled example hooks directory, through the real runner and plugins'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "check" -d 'Audit the hooks directory, the plugins and the configuration without running anything. Exit 0 when clean, 1 when anything is wrong'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "log" -d 'Print the latest hook script runs from the audit log, oldest first; reads only'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "config" -d 'Print the effective configuration and where each value came from'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "dispatch" -d 'Run the per-object scripts of an event as libvirt\'s hook would: `<hooks>/<driver>.d/<object>/<op>/<subop>`'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "install" -d 'Make virt-hook libvirt\'s hook script for some drivers (all loaded ones by default): `<hooks>/<driver>` becomes a link to virt-hook'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "uninstall" -d 'Remove virt-hook as libvirt\'s hook script (only links to, or copies of, virt-hook) and put back what `install --force` kept'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "completions" -d 'Print the completion script for SHELL on stdout'
complete -c virt-hook -n "__fish_virt_hook_using_subcommand help; and not __fish_seen_subcommand_from drivers run plan demo check log config dispatch install uninstall completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
