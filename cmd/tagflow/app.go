package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/config"
)

// Exit codes: 0 done, 1 refused or failed, 2 the command line is wrong.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks a mistake in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errReported means the command already printed why it failed.
var errReported = errors.New("reported")

// app holds what every command shares.
type app struct {
	stdout, stderr io.Writer
	configPath     string
	closers        []func() // run when the command ends (the embedded registry)
	getenv         func(string) string
}

func (a *app) config() (*config.Config, error) {
	path, explicit := a.configPath, a.configPath != ""
	if !explicit {
		path = config.DefaultFile
	}
	return config.Load(path, explicit)
}

const rootLong = `tagflow gives every container image a tag set you can trace and admit, and
moves tested images between environments without rebuilding them.

Tags (each must match the admission pattern ^(v\d+\.\d+\.\d+|env-\w+|[0-9a-f]{7})$):
  vX.Y.Z      release builds, from a VERSION file or a vX.Y.Z git tag   immutable
  env-<env>   the image an environment runs (env-dev, env-prod)          moved by promotion
  <sha7>      the 7-character commit SHA, on every build                 immutable
  latest      only when asked, only for dev, never prod or protected registries

Configuration comes from ./tagflow.yaml (or --config); without one, defaults apply:
registry localhost:5000, environments dev → staging → prod.

Exit status: 0 done, 1 refused by policy or failed, 2 wrong usage.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := &cobra.Command{
		Use:           "tagflow",
		Short:         "Traceable image tags and digest-exact promotions",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "config file (default ./tagflow.yaml when present)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.planCommand(), a.versionCommand(), a.pushCommand(), a.tagCommand(), a.verifyCommand(), a.retainCommand(), a.gitopsCommand(), a.buildCommand(), a.scanCommand(), a.releaseCommand(), a.promoteCommand(), a.rollbackCommand(), a.statusCommand(), a.policyCommand(), a.webhookCommand(), a.provenanceCommand(), a.actionCommand())

	// Anything that fails before a command's own code runs (unknown command,
	// missing required flag, bad flag) is a usage error.
	ran := false
	for _, c := range root.Commands() {
		markRan(c, &ran)
	}
	err := root.ExecuteContext(ctx)
	for _, c := range a.closers {
		c()
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errReported):
		return exitFailed
	}
	fmt.Fprintf(stderr, "tagflow: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || !ran {
		fmt.Fprintln(stderr, "Run 'tagflow --help' for usage.")
		return exitUsage
	}
	return exitFailed
}

func markRan(c *cobra.Command, ran *bool) {
	if c.RunE != nil {
		inner := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return inner(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRan(sub, ran)
	}
}

// required marks flags a command cannot run without.
func required(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		_ = cmd.MarkFlagRequired(n)
	}
}
