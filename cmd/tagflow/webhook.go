package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/webhook"
)

// envWebhookSecret holds the shared secret registries send as a bearer token.
const envWebhookSecret = "TAGFLOW_WEBHOOK_SECRET"

func (a *app) webhookCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Receive registry notifications and flag tag moves tagflow did not make"}
	var f flowFlags
	var addr string
	var grace time.Duration
	serve := &cobra.Command{
		Use:   "serve --addr 127.0.0.1:PORT",
		Short: "Serve /events for a registry's notifications and /metrics",
		Long: `serve accepts distribution's notification events (` + webhook.EventsType + `)
on POST /events, authenticated by "Authorization: Bearer $` + envWebhookSecret + `" (set the
same header in the registry's notifications.endpoints), and flags every push of an
env-* or vX.Y.Z tag that no tagflow release, promotion or rollback record and no
GitOps overlay accounts for: an error log line and tagflow_unexpected_tag_moves_total
on /metrics.`,
		Example: `  TAGFLOW_WEBHOOK_SECRET=… tagflow webhook serve --addr 127.0.0.1:9099`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret := os.Getenv(envWebhookSecret)
			if secret == "" {
				return usagef("set $%s: an unauthenticated receiver would accept anyone's events", envWebhookSecret)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			d, err := a.deps(cmd.Context(), cfg, &f)
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return usagef("--addr %s: %w", addr, err)
			}
			rc := &webhook.Receiver{Deps: d, Secret: secret, Grace: grace, Log: slog.New(slog.NewTextHandler(a.stderr, nil))}
			srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			fmt.Fprintf(a.stderr, "tagflow webhook: listening on http://%s/events (metrics on /metrics)\n", l.Addr())
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			rc.Wait()
			return nil
		},
	}
	fs := serve.Flags()
	fs.StringVar(&addr, "addr", "127.0.0.1:9099", "address to listen on")
	fs.DurationVar(&grace, "grace", 5*time.Second, "how long a tag's records may trail its push before the move is flagged")
	f.add(fs)
	cmd.AddCommand(serve)
	return cmd
}
