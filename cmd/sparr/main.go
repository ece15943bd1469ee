// Sparr is the one binary of Spärr: it creates the hub's keys, runs the
// hub, and lets the operator manage members and take backups.
//
// # Commands
//
//	sparr demo [--members N]              run a hub and banks on this machine
//	                                      and follow one consumer's flag
//	sparr init --data DIR                 create the hub's keys in DIR/keys
//	sparr serve --data DIR --tls-cert … --tls-key …
//	                                      run the hub (or: sparr serve --dev)
//	sparr member add|list|show|update|suspend|resume
//	                                      manage members through the admin API
//	sparr keys rotate --data DIR          add a record-signing key
//	sparr backup --out FILE (--data DIR | --hub URL)
//	                                      copy the hub's data file
//	sparr log verify --hub URL --log-key KEY --state FILE --member ID --key FILE
//	                                      verify the exchange log (regulators)
//	sparr bench [--quick] [--json]        measure the hub under load
//	sparr version (or --version)          print the version
//
// Every flag can also be set by an environment variable. The hub's own
// configuration, serve's flags, and the flags that mean the same in every
// command that has them (--data, --hub, --operator-key and --algorithm)
// are SPARR_<FLAG>, as in SPARR_MAX_THAW and SPARR_DATA. Every other
// command's own flags have variables named for the command, so that none
// is read by another command: SPARR_<COMMAND>_<FLAG>, as in
// SPARR_BACKUP_OUT, SPARR_MEMBER_ADD_ID. A flag on the command
// line beats the environment, which beats the default. "sparr <command>
// -h" lists a command's flags with their variables. A member's quotas
// (sparr member add and update) are the exception, set on the command line
// only. A bad value in a variable is a usage error that names it; so is
// a variable under the name a command's own flag had before its variable
// carried the command (SPARR_OUT for SPARR_BACKUP_OUT).
//
// # Exit status
//
// 0 on success, 1 when the command failed, 2 for a usage error (an unknown
// command or flag, a missing or contradictory flag); "sparr log verify"
// also exits 3 when it could not check the log. Errors are one line on
// standard error, starting with "sparr: ".
//
// docs/operations.md describes running the hub.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// commands are sparr's commands, in the order "sparr -h" lists them. Adding
// one is adding a line here.
func commands() []*command {
	return []*command{
		{name: "init", summary: "create the hub's keys in DIR/keys", run: runInit},
		{name: "serve", summary: "run the hub", run: runServe},
		{name: "demo", summary: "run a hub and three banks on this machine and tell one consumer's story", run: runDemo},
		{name: "member", summary: "manage members through the hub's admin API", sub: memberCommands()},
		{name: "peer", summary: "manage peered hubs (other countries' home hubs) through the admin API", sub: peerCommands()},
		{name: "keys", summary: "manage the hub's keys", sub: []*command{
			{name: "rotate", summary: "add a record-signing key, which signs from the next start", run: runKeysRotate},
		}},
		{name: "cluster", summary: "see and change a replicated hub's cluster through its admin API", sub: clusterCommands()},
		{name: "backup", summary: "copy the hub's data file, from its directory or from the running hub", run: runBackup},
		{name: "console", summary: "serve the regulator's console on loopback: the exchange, verified on this machine", run: runConsole},
		{name: "log", summary: "check the hub's exchange log, as a regulator does", sub: logCommands()},
		{name: "bench", summary: "measure the hub under load, beside baselines run alongside", run: runBench},
		{name: "version", summary: "print the version", run: runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
