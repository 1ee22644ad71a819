package knfsd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The root file system recipe. Changing any of it (or the UML modules
// the host has) changes the image key, so the next Start builds a new
// image instead of using a stale one.
const (
	// recipeVersion is bumped when the build steps below change in a way
	// the other inputs of the key do not show.
	recipeVersion = 1
	// suite is the Debian release debootstrap installs in the guest.
	suite = "bookworm"
	// imageSize is the size of the (sparse) root file system image; the
	// files take about 230 MB of it.
	imageSize = "1G"
	// buildTimeout bounds an image build: debootstrap takes 2–3 minutes
	// on a fresh machine.
	buildTimeout = 10 * time.Minute
	// lockTimeout bounds the wait for another process's build.
	lockTimeout = 12 * time.Minute
)

// packages are installed in the guest besides debootstrap's minbase.
var packages = []string{"nfs-kernel-server", "kmod", "iproute2", "procps"}

// trimmed are removed from the root file system after debootstrap:
// nothing in the guest reads them.
var trimmed = []string{
	"usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info",
	"var/cache/apt", "var/lib/apt/lists",
}

// bootInit is the guest's PID 1, baked into the image. It mounts the
// server's state directory from the host (hostfs) and runs the init.sh
// that Start wrote there, so that everything per server stays out of
// the cached image.
const bootInit = `#!/bin/sh
# PID 1 of a gonfs knfsd guest (internal/knfsd): mount the server's state
# directory from the host and run the init.sh the test wrote there.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /gonfs
if ! mount -t hostfs none /gonfs -o "$gonfs_state"; then
	echo "gonfs-init: cannot mount the state directory $gonfs_state"
	exit 1
fi
exec /bin/sh /gonfs/init.sh
`

// umlModulesDir holds the UML kernel's modules (Debian user-mode-linux).
const umlModulesDir = "/usr/lib/uml/modules"

// CacheEnv names the environment variable that overrides CacheDir.
const CacheEnv = "GONFS_KNFSD_CACHE"

// MirrorEnv names the environment variable that overrides the Debian
// mirror debootstrap uses (default: the one apt's sources name for
// bookworm).
const MirrorEnv = "GONFS_KNFSD_MIRROR"

// CacheDir returns the directory holding cached root file system images:
// $GONFS_KNFSD_CACHE, or /var/cache/gonfs/knfsd.
func CacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return "/var/cache/gonfs/knfsd"
}

// umlVersion returns the release of the UML kernel whose modules are
// installed (the single directory under /usr/lib/uml/modules).
func umlVersion() (string, error) {
	entries, err := os.ReadDir(umlModulesDir)
	if err != nil {
		return "", fmt.Errorf("knfsd: UML modules: %w (Debian package user-mode-linux)", err)
	}
	var versions []string
	for _, e := range entries {
		if e.IsDir() {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) != 1 {
		return "", fmt.Errorf("knfsd: want one kernel release under %s, found %v", umlModulesDir, versions)
	}
	return versions[0], nil
}

// imageKey identifies an image built by this recipe for the installed
// UML kernel.
func imageKey(version string) string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %d\nsuite %s\nsize %s\numl %s\n", recipeVersion, suite, imageSize, version)
	fmt.Fprintf(h, "packages %s\ntrimmed %s\ninit %s\n", strings.Join(packages, ","), strings.Join(trimmed, ","), bootInit)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// imagePath returns the path of the cached image for the installed UML
// kernel (which may not exist yet).
func imagePath() (string, error) {
	v, err := umlVersion()
	if err != nil {
		return "", err
	}
	return filepath.Join(CacheDir(), "rootfs-"+suite+"-"+imageKey(v)+".ext4"), nil
}

// EnsureImage builds the guest image unless it is cached already, and
// returns its path. Start does this itself; calling it first (make test
// does, through TestImage) keeps the build out of any test's time.
func EnsureImage() (string, error) {
	return ensureImage(func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) })
}

// ensureImage returns the cached image, building it first if it does not
// exist. The build holds an exclusive lock on CacheDir/lock, so that
// concurrent test processes build it once, and renames the finished
// image into place, so that no one sees half of it. logf reports a build.
func ensureImage(logf func(format string, args ...any)) (string, error) {
	path, err := imagePath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return "", fmt.Errorf("knfsd: %w", err)
	}
	unlock, err := lockFile(filepath.Join(CacheDir(), "lock"), lockTimeout, func() {
		logf("knfsd: waiting for another process to build %s", path)
	})
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil // another process built it while we waited
	}
	v, err := umlVersion()
	if err != nil {
		return "", err
	}
	start := time.Now()
	logf("knfsd: building the guest root file system %s (debootstrap %s; takes 2–5 minutes, once per recipe)", path, suite)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if err := buildImage(ctx, path, v); err != nil {
		return "", err
	}
	logf("knfsd: built %s (%s on disk) in %v", path, imageSizeBytes(path), time.Since(start).Round(time.Second))
	return path, nil
}

// lockFile takes an exclusive flock on path, waiting up to timeout, and
// returns its release. It calls waiting once if it has to wait.
func lockFile(path string, timeout time.Duration, waiting func()) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("knfsd: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("knfsd: lock %s (another test process building the image?): %w", path, err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startBuild makes a fresh directory for a build under CacheDir, named
// prefix and a random suffix, after removing those of builds that died
// (their process killed), and returns it with the Debian mirror to
// debootstrap from. The caller removes the directory.
func startBuild(prefix string) (dir, mirror string, err error) {
	if old, _ := filepath.Glob(filepath.Join(CacheDir(), prefix+"*")); len(old) > 0 {
		for _, d := range old {
			os.RemoveAll(d)
		}
	}
	if mirror, err = debianMirror(); err != nil {
		return "", "", err
	}
	if dir, err = os.MkdirTemp(CacheDir(), prefix); err != nil {
		return "", "", fmt.Errorf("knfsd: %w", err)
	}
	return dir, mirror, nil
}

// buildImage builds the image into a directory of its own under
// CacheDir, then renames it to path. The caller holds the lock.
func buildImage(ctx context.Context, path, version string) error {
	dir, mirror, err := startBuild("build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	log := filepath.Join(dir, "build.log")
	steps := [][]string{
		{"debootstrap", "--variant=minbase", "--include=" + strings.Join(packages, ","), suite, root, mirror},
		{"mkdir", "-p", filepath.Join(root, "lib/modules")},
		{"cp", "-a", filepath.Join(umlModulesDir, version), filepath.Join(root, "lib/modules/")},
	}
	for _, p := range trimmed {
		steps = append(steps, []string{"rm", "-rf", filepath.Join(root, p)})
	}
	for _, args := range steps {
		if err := run(ctx, log, args...); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "sbin/gonfs-init"), []byte(bootInit), 0o755); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	img := filepath.Join(dir, "rootfs.ext4")
	if err := run(ctx, log, "mkfs.ext4", "-q", "-F", "-L", "gonfsroot", "-d", root, img, imageSize); err != nil {
		return err
	}
	if err := os.Rename(img, path); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	return nil
}

// run runs a build step, appending its output to log; its error quotes
// the end of the log.
func run(ctx context.Context, log string, args ...string) error {
	out, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	defer out.Close()
	fmt.Fprintf(out, "=== %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("knfsd: image build: %s: %w\n%s", strings.Join(args, " "), err, tail(log, 20))
	}
	return nil
}

// debianMirror returns the Debian mirror for debootstrap: $GONFS_KNFSD_MIRROR,
// or the first URI apt's sources use for the suite (this machine may reach
// Debian only through that one), or deb.debian.org.
func debianMirror() (string, error) {
	if m := os.Getenv(MirrorEnv); m != "" {
		return m, nil
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, f := range files {
		if m := mirrorIn(f); m != "" {
			return m, nil
		}
	}
	return "http://deb.debian.org/debian", nil
}

// mirrorIn returns the URI that the apt sources file at path gives for
// suite's main component, "" if none.
func mirrorIn(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return parseSources(f, strings.HasSuffix(path, ".sources"))
}

// parseSources reads one-line ("deb [opts] URI SUITE COMPONENTS") or
// deb822 (.sources) apt sources and returns the first URI for suite.
func parseSources(r io.Reader, deb822 bool) string {
	sc := bufio.NewScanner(r)
	if !deb822 {
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 3 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if strings.HasPrefix(f[0], "[") {
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				if len(f) == 0 {
					continue
				}
				f = f[1:]
			}
			if len(f) >= 2 && f[1] == suite {
				return f[0]
			}
		}
		return ""
	}
	stanza := map[string]string{}
	check := func() string {
		defer clear(stanza)
		if !strings.Contains(" "+stanza["types"]+" ", " deb ") {
			return ""
		}
		if !strings.Contains(" "+stanza["suites"]+" ", " "+suite+" ") {
			return ""
		}
		if u := strings.Fields(stanza["uris"]); len(u) > 0 {
			return u[0]
		}
		return ""
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if m := check(); m != "" {
				return m
			}
			continue
		}
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if ok {
			stanza[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return check()
}

// imageSizeBytes returns the space the cached image takes on disk (it is
// sparse), for reports.
func imageSizeBytes(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "?"
	}
	return strconv.FormatInt(st.Blocks*512>>20, 10) + " MiB"
}
