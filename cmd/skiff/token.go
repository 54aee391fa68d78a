package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/join"
)

// tokenCommand manages the join tokens agents join the cluster with.
func tokenCommand() *cobra.Command {
	var kubeconfig string
	c := &cobra.Command{
		Use:   "token",
		Short: "Manage the join tokens nodes join the cluster with",
		Long: "Manage join tokens: each is a bootstrap token Secret in kube-system, printed as\n" +
			"SKIFF1::sha256:<CA hash>::<id>.<secret> so that a joining agent can check the server's CA.\n" +
			"The server's own token, which never expires, is in DATA_DIR/" + join.NodeTokenFile + ".",
	}
	c.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG, else "+defaultDataDir+"/admin.kubeconfig)")

	var ttl time.Duration
	var description string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a join token and print it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, ca, err := tokenClient(kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			tok, err := join.CreateToken(ctx, client, ttl, description, ca)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token works; 0 never expires")
	create.Flags().StringVar(&description, "description", "", "what the token is for, shown by `skiff token list`")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the join tokens (their IDs, not their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, _, err := tokenClient(kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			tokens, err := join.ListTokens(ctx, client)
			if err != nil {
				return err
			}
			return printTokens(cmd.OutOrStdout(), tokens, time.Now())
		},
	}

	del := &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete join tokens; nodes that joined with them keep working",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := tokenClient(kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			var errs []error
			for _, id := range args {
				if err := join.DeleteToken(ctx, client, id); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "join token %s deleted\n", tokenLabel(id))
			}
			return errors.Join(errs...)
		},
	}
	c.AddCommand(create, list, del)
	return c
}

// tokenLabel is how a deleted token is named back to the user: its ID,
// never its secret.
func tokenLabel(arg string) string {
	if t, err := join.ParseToken(arg); err == nil {
		return t.ID
	}
	if len(arg) > 6 {
		return arg[:6]
	}
	return arg
}

// printTokens writes the token table.
func printTokens(w io.Writer, tokens []join.TokenInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tTTL\tEXPIRES\tDESCRIPTION")
	for _, t := range tokens {
		ttl, expires := "<forever>", "<never>"
		switch {
		case t.Problem != "":
			ttl, expires = "<invalid>", t.Problem
		case t.Expires != nil && t.Expired(now):
			ttl, expires = "<expired>", t.Expires.UTC().Format(time.RFC3339)
		case t.Expires != nil:
			ttl, expires = duration.ShortHumanDuration(t.Expires.Sub(now)), t.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, ttl, expires, t.Description)
	}
	return tw.Flush()
}

// tokenClient connects with the kubeconfig ($KUBECONFIG, else the local
// server's admin kubeconfig) and reads the cluster CA tokens are pinned
// to from its certificate-authority data.
func tokenClient(kubeconfig string) (kubernetes.Interface, *x509.Certificate, error) {
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig == "" {
		kubeconfig = filepath.Join(defaultDataDir, "admin.kubeconfig")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	ca, err := kubeconfigCA(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return client, ca, nil
}

// kubeconfigCA is the first certificate of the kubeconfig's certificate
// authority (inline data, else the file it names).
func kubeconfigCA(cfg *rest.Config) (*x509.Certificate, error) {
	data := cfg.CAData
	if len(data) == 0 && cfg.CAFile != "" {
		var err error
		if data, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("certificate authority: %w", err)
		}
	}
	if len(data) == 0 {
		return nil, errors.New("no certificate-authority-data: join tokens pin the cluster CA, so it must be known")
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("the certificate authority is not a PEM certificate")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate authority: %w", err)
	}
	return ca, nil
}
