package cgroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// scope is a transient systemd scope holding cgpeak. It needs no stopping:
// once cgpeak exits it is empty, and systemd stops it and removes its
// cgroups. A scope whose cgpeak was killed (SIGKILL) may still hold the
// workload: the next cgpeak stops it (cleanStaleScopes).
type scope struct {
	conn *sdbus.Conn
	name string
}

func (s *scope) close() { s.conn.Close() }

// How long systemd may take to start a scope; under emulation it is slow.
const scopeTimeout = 60 * time.Second

func systemdSource(h Hierarchy, e env, desc string) (*Source, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scopeTimeout)
	defer cancel()
	user := e.euid != 0
	conn, err := connectSystemd(ctx, user, e.userBus)
	if err != nil {
		return nil, err
	}
	kind := "system"
	if user {
		kind = "user"
	}
	cleanStaleScopes(ctx, conn)
	sc := &scope{conn: conn}
	if err := sc.start(ctx, desc); err != nil {
		conn.Close()
		return nil, err
	}
	cg, err := sc.controlGroup(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	dir := filepath.Join(h.Mount, cg)
	// In a cgroup namespace systemd's path is not ours: trust where the
	// kernel now says cgpeak is, which is the scope.
	if now, err := FindMemory(); err == nil && filepath.Base(now.Self) == sc.name {
		dir = now.Self
	}
	if !has(e.controllers(dir), "memory") {
		conn.Close()
		if user {
			return nil, setupErr("the memory controller is not delegated to your systemd user manager (%s has no memory in cgroup.controllers): as root, run `systemctl edit user@.service`, add [Service] Delegate=memory pids cpu, then log in again", dir)
		}
		return nil, setupErr("systemd's scope %s has no memory controller: enable memory accounting (DefaultMemoryAccounting=yes in /etc/systemd/system.conf)", dir)
	}
	h.Self = dir
	s, err := delegate(h, dir)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.scope = sc
	s.H.Provider = FromSystemd
	s.H.From = fmt.Sprintf("systemd %s scope %s", kind, sc.name)
	return s, nil
}

// connectSystemd reaches the user's manager through the user bus, or the
// system manager (root) through the system bus, else its private socket
// (early boot, or no dbus-daemon).
func connectSystemd(ctx context.Context, user bool, busAddr string) (*sdbus.Conn, error) {
	if user {
		c, err := sdbus.NewConnection(func() (*dbus.Conn, error) {
			conn, err := dbus.Dial(busAddr, dbus.WithContext(ctx))
			if err != nil {
				return nil, err
			}
			if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
				conn.Close()
				return nil, err
			}
			if err := conn.Hello(); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		})
		if err != nil {
			return nil, setupErr("connecting to your systemd user manager at %s: %v: start it with `loginctl enable-linger $USER` (then log in again)", busAddr, err)
		}
		return c, nil
	}
	c, err := sdbus.NewSystemConnectionContext(ctx)
	if err != nil {
		c, err = sdbus.NewSystemdConnectionContext(ctx)
	}
	if err != nil {
		return nil, setupErr("connecting to the systemd system manager: %v: is systemd running?", err)
	}
	return c, nil
}

// scopeName is unique per cgpeak and names its pid, so a later cgpeak can
// tell a scope whose cgpeak died.
func scopeName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d-%s.scope", NamePrefix, os.Getpid(), hex.EncodeToString(b[:]))
}

func (sc *scope) start(ctx context.Context, desc string) error {
	if desc == "" {
		desc = "cgpeak"
	}
	props := []sdbus.Property{
		// PIDs must be uint32 (D-Bus "au"): systemd refuses signed ints with ENXIO.
		sdbus.PropPids(uint32(os.Getpid())),
		sdbus.PropDescription(desc),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		{Name: "MemoryAccounting", Value: dbus.MakeVariant(true)},
		// Gone even if it fails, instead of lingering as a failed unit.
		{Name: "CollectMode", Value: dbus.MakeVariant("inactive-or-failed")},
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		sc.name = scopeName()
		done := make(chan string, 1)
		_, err := sc.conn.StartTransientUnitContext(ctx, sc.name, "fail", props, done)
		var de dbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.UnitExists" {
			// A failed unit of that name may linger: clear it, take another name.
			_ = sc.conn.ResetFailedUnitContext(ctx, sc.name)
			last = err
			continue
		}
		if err != nil {
			return setupErr("systemd refused the scope %s: %s", sc.name, dbusText(err))
		}
		select {
		case res := <-done:
			if res != "done" {
				_ = sc.conn.ResetFailedUnitContext(ctx, sc.name)
				return setupErr("systemd could not start the scope %s: job %s (see journalctl %s-u %s)", sc.name, res, userFlag(os.Geteuid() != 0), sc.name)
			}
			return nil
		case <-ctx.Done():
			return setupErr("systemd did not start the scope %s within %s", sc.name, scopeTimeout)
		}
	}
	return setupErr("systemd refused the scope: %s", dbusText(last))
}

func userFlag(user bool) string {
	if user {
		return "--user "
	}
	return ""
}

// dbusText is systemd's own message, not the error's Go wrapping.
func dbusText(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		var parts []string
		for _, b := range de.Body {
			if s, ok := b.(string); ok {
				parts = append(parts, s)
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, ": ") + " (" + de.Name + ")"
		}
		return de.Name
	}
	return err.Error()
}

func (sc *scope) controlGroup(ctx context.Context) (string, error) {
	p, err := sc.conn.GetUnitTypePropertyContext(ctx, sc.name, "Scope", "ControlGroup")
	if err != nil {
		return "", setupErr("reading the cgroup of systemd scope %s: %s", sc.name, dbusText(err))
	}
	cg, ok := p.Value.Value().(string)
	if !ok || cg == "" {
		return "", setupErr("systemd scope %s has no cgroup (ControlGroup is %v)", sc.name, p.Value)
	}
	return cg, nil
}

// cleanStaleScopes stops the scopes of cgpeaks that were killed outright,
// with whatever workload still runs in them.
func cleanStaleScopes(ctx context.Context, conn *sdbus.Conn) {
	units, err := conn.ListUnitsByPatternsContext(ctx, nil, []string{NamePrefix + "*.scope"})
	if err != nil {
		return
	}
	for _, u := range units {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(u.Name, NamePrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		done := make(chan string, 1)
		if _, err := conn.StopUnitContext(ctx, u.Name, "replace", done); err == nil {
			select {
			case <-done:
			case <-ctx.Done():
			}
		}
		_ = conn.ResetFailedUnitContext(ctx, u.Name)
	}
}
