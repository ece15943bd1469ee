package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// A usageError is a mistake in how sparr was called: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// An exitError is a failure with an exit status of its own, which the
// command documents.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func (e *exitError) Unwrap() error { return e.err }

// env is what a command runs with: its output and its environment.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// A command is one of sparr's commands: either it runs, or it has
// subcommands (sparr member add).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, name string, args []string) error
	sub     []*command
}

// run is the whole command line: it runs the command args names and
// returns the exit status. Tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	err := dispatch(ctx, e, "", commands(), args)
	var ue *usageError
	var xe *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sparr: %s\n", oneLine(err.Error()))
		return 2
	case errors.As(err, &xe):
		fmt.Fprintf(stderr, "sparr: %s\n", oneLine(err.Error()))
		return xe.code
	default:
		fmt.Fprintf(stderr, "sparr: %s\n", oneLine(err.Error()))
		return 1
	}
}

// dispatch runs the command args[0] of cmds; name is the command line so
// far without "sparr" ("member" for sparr member add).
func dispatch(ctx context.Context, e *env, name string, cmds []*command, args []string) error {
	if len(args) == 0 {
		return usagef("%smissing command; run %s -h for the list", prefix(name), program(name))
	}
	if name == "" && (args[0] == "--version" || args[0] == "-version") {
		// "sparr --version" is "sparr version", as other tools have it.
		args = append([]string{"version"}, args[1:]...)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			// "sparr help serve" is "sparr serve -h".
			return dispatch(ctx, e, name, cmds, append(args[1:], "-h"))
		}
		printCommands(e.stdout, program(name), cmds)
		return flag.ErrHelp
	}
	i := slices.IndexFunc(cmds, func(c *command) bool { return c.name == args[0] })
	if i < 0 {
		return usagef("%sunknown command %q; run %s -h for the list", prefix(name), args[0], program(name))
	}
	c := cmds[i]
	if name != "" {
		name += " "
	}
	if c.sub != nil {
		return dispatch(ctx, e, name+c.name, c.sub, args[1:])
	}
	return c.run(ctx, e, name+c.name, args[1:])
}

// program is how a command is run: "sparr member add".
func program(name string) string { return strings.TrimSpace("sparr " + name) }

// prefix starts an error message about a command: "member add: ".
func prefix(name string) string {
	if name == "" {
		return ""
	}
	return name + ": "
}

func printCommands(w io.Writer, name string, cmds []*command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun %s <command> -h for a command's flags. Every flag can also be set by an\nenvironment variable, which the help names, unless it says \"command line only\";\na flag given on the command line wins. sparr serve's flags, the hub's own\nconfiguration, are SPARR_<FLAG> (--max-thaw: SPARR_MAX_THAW), as are --data,\n--hub, --operator-key and --algorithm, which mean the same in every command;\nevery other command's own flags have variables named for the command\n(sparr backup --out: SPARR_BACKUP_OUT).\ndocs/operations.md describes running the hub.\n", name)
}

// A flagSet is the flags of one command, each with an environment
// variable.
type flagSet struct {
	*flag.FlagSet
	e        *env
	name     string // "serve", "member add"
	synopsis string // "--data DIR [flags]"
	about    string
	notes    map[string]string // flag → what its default means, when that is not its zero value
	// local are the flags no environment variable sets: those a variable
	// left in the environment should never set unseen (a member's own
	// quotas, on every member added or updated).
	local map[string]bool
}

// flags returns the flag set of the command name; synopsis follows the
// name on the usage line and about explains the command.
func (e *env) flags(name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, e: e, name: name, synopsis: synopsis, about: about, notes: map[string]string{}, local: map[string]bool{}}
}

// sharedFlags mean the same in every command that has them: the hub's
// data directory, its URL, the operator's key and the algorithm of a
// record-signing key. Their variables are shared too.
var sharedFlags = map[string]bool{"data": true, "hub": true, "operator-key": true, "algorithm": true}

// envName is the environment variable of a flag of the command name
// ("serve", "member add"): SPARR_ and the flag's name in capitals for a
// shared flag (--data: SPARR_DATA, in every command) and for the flags of
// serve, which are the hub's own configuration (--max-thaw:
// SPARR_MAX_THAW); for any other flag the command's name comes first, so
// that no command reads a variable meant for another (sparr backup --out:
// SPARR_BACKUP_OUT; sparr member add --id: SPARR_MEMBER_ADD_ID). A flag
// serve shares a name with is command line only in the other command
// (the member commands' quotas).
func envName(name, flagName string) string {
	if sharedFlags[flagName] || name == "serve" {
		return envWord(flagName)
	}
	return envWord(name + "_" + flagName)
}

// envWord makes a variable's name: SPARR_ and words in capitals, joined
// by _ ("member add_jwks-url": SPARR_MEMBER_ADD_JWKS_URL).
func envWord(s string) string {
	return "SPARR_" + strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(s))
}

// accepted says what a flag's value may be, for an error about a value
// that is not one; err is the flag's own error, said when it is better.
func accepted(f *flag.Flag, err error) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	switch g.Get().(type) {
	case bool:
		return "want true or false"
	case int, int64:
		return "want a whole number"
	case uint, uint64:
		return "want a whole number of 0 or more"
	case float64:
		return "want a number, such as 2.5"
	case time.Duration:
		return "want a duration, such as 90s, 30m or 72h"
	}
	return err.Error()
}

// note sets how the usage describes a flag's default.
func (fs *flagSet) note(flagName, def string) { fs.notes[flagName] = def }

// commandLineOnly makes flags settable on the command line only, not by
// their environment variables.
func (fs *flagSet) commandLineOnly(flagNames ...string) {
	for _, n := range flagNames {
		fs.local[n] = true
	}
}

// parse parses args, with flags before, between or after positional
// arguments, then fills each flag not on the command line from its
// environment variable. It returns the positional arguments.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(fs.e.stdout)
				return nil, err
			}
			return nil, usagef("%s: %v; run %s -h for its flags", fs.name, err, program(fs.name))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if fs.local[f.Name] || given[f.Name] || err != nil {
			return
		}
		name := envName(fs.name, f.Name)
		if old := envWord(f.Name); old != name && fs.e.getenv(old) != "" {
			// The variable a command's own flag had before its variable
			// carried the command: refused, so that a setting left under
			// the old name is not dropped unseen.
			err = usagef("%s: %s is not read: the variable of --%s is %s", fs.name, old, f.Name, name)
			return
		}
		v := fs.e.getenv(name)
		if v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = usagef("%s: %s=%q: %s", fs.name, name, v, accepted(f, serr))
		}
	})
	return positional, err
}

// given reports whether the flag was set, on the command line or by its
// environment variable.
func (fs *flagSet) given(name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", program(fs.name), fs.synopsis, fs.about)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags, each with the environment variable that can set it instead:\n")
	fs.VisitAll(func(f *flag.Flag) {
		placeholder, usage := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if placeholder != "" {
			head += " " + placeholder
		}
		def, ok := fs.notes[f.Name]
		switch {
		case ok:
		case f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0":
			def = f.DefValue
		}
		if def != "" {
			usage += " (default " + def + ")"
		}
		from := envName(fs.name, f.Name)
		if fs.local[f.Name] {
			from = "command line only"
		}
		fmt.Fprintf(w, "  %s  (%s)\n      %s\n", head, from, usage)
	})
}

// oneLine makes an error message fit on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=@%+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// noArgs refuses positional arguments.
func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return usagef("%s: unexpected argument %q; run %s -h for its flags", name, args[0], program(name))
	}
	return nil
}
