// Command worker runs eddy pipelines.
//
//	worker run -c pipeline.yaml        join the pipeline's consumer group and process
//	worker validate pipeline.yaml...   check pipeline files; list every error (-json: as JSON)
//	worker offsets show|reset          committed offsets vs the store's watermarks; replay
//	worker ingest -topic T [file ...]  publish JSON lines or CSV (files, stdin, HTTP POST) to Kafka
//	worker dev [-c pipeline.yaml]...   embedded broker, memory state, sample data; -c twice: a cascade
//	worker test [dir/...]              run pipeline test files (*_test.yaml) in process
//	worker state get -c pipeline.yaml  what the store holds for a key (worker run -query serves it too)
//	worker version [-json]             version, commit, Go toolchain
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..."; left
// at "dev", worker version shows the module's version when it has one.
var version = "dev"

const usage = `eddy worker — stream processing for Kafka with external state

usage:
  worker run -c pipeline.yaml [flags]      run a pipeline as a member of its consumer group
  worker validate [flags] pipeline.yaml... check pipeline files (or -c file) and list every
          [--json]                         error (exit 1); --json: the result as JSON;
          [--partitions N --max-replicas M]  warn when replicas would exceed the partitions
  worker dev [-c pipeline.yaml]... [flags] try a pipeline with nothing installed: embedded
                                           Kafka-protocol broker, memory state, sample events;
                                           -c twice runs a cascade (or -example cascade)
  worker test [flags] [file|dir|dir/...]   run a pipeline's test files (*_test.yaml): input events,
                                           expected outputs, dead letters, late events (-update)
  worker state get -c file -step S -key K  what the store holds for a key (an aggregate's windows,
          [-table T] [-at T] [-json]         a table's row), read directly; worker run -query serves it
  worker offsets show|reset [flags]        committed offsets vs the store's watermarks; replay
  worker topics check|create -c file       the topics a pipeline reads and writes; create them
  worker ingest -topic T [flags] [file ...] publish JSON lines or CSV from files, stdin or
          [-http :8080]                    HTTP POST /ingest to a topic, each record with a
                                           replay-stable eddy-id (exit 3: lines rejected)
  worker version [-json]                   print the version, commit and Go toolchain

Run "worker <command> -h" for a command's flags.
`

// errUsage marks a command-line mistake: exit code 2.
var errUsage = errors.New("usage")

// exitStatus ends a command with an exit status of its own (worker
// ingest's 3 for rejected lines), its reasons already printed.
type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "validate":
		err = cmdValidate(args[1:], stdout, stderr)
	case "dev":
		err = cmdDev(args[1:], stdout, stderr)
	case "test":
		err = cmdTest(args[1:], stdout, stderr)
	case "state":
		err = cmdState(args[1:], stdout, stderr)
	case "offsets":
		err = cmdOffsets(args[1:], stdout, stderr)
	case "topics":
		err = cmdTopics(args[1:], stdout, stderr)
	case "ingest":
		err = cmdIngest(args[1:], os.Stdin, stderr)
	case "version", "--version", "-version":
		err = cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "worker: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return exitCode(err, stdout, stderr)
}

// exitCode is the exit status of a command that returned err, which it
// prints unless it was reported already. Help asked for is normal output:
// it goes to stdout (exit 0); errors go to stderr.
func exitCode(err error, stdout, stderr io.Writer) int {
	var status exitStatus
	var help helpText
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &help):
		fmt.Fprint(stdout, string(help))
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
}

// newFlags makes a command's flag set. Its errors go to stderr and come
// back from parse as errUsage; its help (-h), as a helpText for stdout.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("worker "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\nflags:\n", fs.Name())
		fs.PrintDefaults()
	}
	return fs
}

// helpText is a command's usage, asked for with -h or --help: run prints
// it on stdout. It is a flag.ErrHelp.
type helpText string

func (h helpText) Error() string        { return string(h) }
func (h helpText) Is(target error) bool { return target == flag.ErrHelp }

// parseFlags parses args, leaving positional arguments in fs.Args(). The
// usage that -h asks for comes back as a helpText; a mistake is reported
// on fs.Output() and comes back as errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var b strings.Builder
	fs.SetOutput(&b)
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return helpText(b.String())
	case err != nil:
		fmt.Fprint(out, b.String())
		return errUsage
	}
	return nil
}

// parse is parseFlags for a command that takes no positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, which it returns ("--" ends the flags).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}
