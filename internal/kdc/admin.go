package kdc

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Command returns a command running an MIT tool (kinit, klist, kvno,
// kadmin.local, ktutil, ...) against this realm, as exec.CommandContext
// does: KRB5_CONFIG and KRB5_KDC_PROFILE name the realm's files,
// KRB5CCNAME a credential cache in Dir (never the machine's
// /tmp/krb5cc_UID), and LC_ALL=C fixes klist's date format. Append to
// cmd.Env to override a variable (the last value wins). The sbin
// directories are searched after PATH.
func (k *KDC) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if path, err := lookPath(name); err == nil {
		name = path
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = k.env()
	cmd.Dir = k.dir
	return cmd
}

// kadmin runs one kadmin.local query and returns its output. kadmin.local
// exits with status 0 whatever happened, so any line on stderr, other
// than the notice that a new principal has no password policy, is its
// error.
func (k *KDC) kadmin(query string) (string, error) {
	k.admin.Lock()
	defer k.admin.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := k.Command(ctx, "kadmin.local", "-r", k.cfg.Realm, "-q", query)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kdc: kadmin.local -q %q: %w\n%s%s", query, err, stdout.String(), stderr.String())
	}
	var bad []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "No policy specified for ") {
			continue
		}
		bad = append(bad, line)
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("kdc: kadmin.local -q %q: %s", query, strings.Join(bad, "\n"))
	}
	return stdout.String(), nil
}

// AddPrincipal creates the principal name (e.g. "alice", or
// "alice@REALM") with a password, which kinit and gokrb5's
// NewWithPassword then accept. Its keys are of Config.Enctypes, and it
// needs pre-authentication. Neither name nor password may hold blanks,
// quotes, backslashes or control characters (kadmin.local could not be
// given them). It fails tb if the principal exists.
func (k *KDC) AddPrincipal(tb TB, name, password string) {
	tb.Helper()
	if err := checkWord("principal name", name); err != nil {
		tb.Fatal(err)
	}
	if err := checkWord("password", password); err != nil {
		tb.Fatal(err)
	}
	if _, err := k.kadmin("addprinc -pw " + password + " " + name); err != nil {
		tb.Fatal(err)
	}
}

// exists reports whether the principal name is in the database.
func (k *KDC) exists(name string) (bool, error) {
	_, err := k.kadmin("getprinc " + name)
	if err != nil && strings.Contains(err.Error(), "Principal does not exist") {
		return false, nil
	}
	return err == nil, err
}

// Keytab writes a new keytab holding the current keys of principals and
// returns its path (a file in Dir; "FILE:"+path is its KRB5_KTNAME). A
// principal that does not exist yet is created first with random keys,
// as a service's is (e.g. "nfs/localhost"). The keys are exported as
// they are (-norandkey): a password stays valid, and so do keytabs and
// tickets made before.
func (k *KDC) Keytab(tb TB, principals ...string) string {
	tb.Helper()
	if len(principals) == 0 {
		tb.Fatal("kdc: Keytab of no principal")
	}
	for _, p := range principals {
		if err := checkWord("principal name", p); err != nil {
			tb.Fatal(err)
		}
		ok, err := k.exists(p)
		if err != nil {
			tb.Fatal(err)
		}
		if !ok {
			if _, err := k.kadmin("addprinc -randkey " + p); err != nil {
				tb.Fatal(err)
			}
		}
	}
	path := filepath.Join(k.dir, fmt.Sprintf("keytab-%d", k.seq.Add(1)))
	if _, err := k.kadmin("ktadd -k " + path + " -norandkey " + strings.Join(principals, " ")); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Kinit gets a ticket-granting ticket for principal with password, using
// MIT's kinit, and returns the path of the new credential cache it wrote
// (a file in Dir; KRB5CCNAME=FILE:path, or the path alone, names it). It
// fails tb, with kinit's message, if kinit fails. To see a failure, run
// kinit through Command.
func (k *KDC) Kinit(tb TB, principal, password string) string {
	tb.Helper()
	path := filepath.Join(k.dir, fmt.Sprintf("ccache-%d", k.seq.Add(1)))
	out, err := k.run(strings.NewReader(password+"\n"), "kinit", "-c", "FILE:"+path, principal)
	if err != nil {
		tb.Fatalf("kdc: kinit %s (KDC %s, realm %s): %v\n%s", principal, k.Addr(), k.cfg.Realm, err, out)
	}
	return path
}
