// Package runas says who a measured command runs as when cgpeak itself runs
// as root: a named user, or the user who ran sudo.
package runas

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Identity is a user the command runs as: its ids, supplementary groups and
// home, and why it was chosen.
type Identity struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32
	Home   string
	Why    string // "asked for", "the user who ran sudo"
}

// Lookup finds a user by name or numeric uid in the user database.
func Lookup(name string) (*Identity, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("no user %q: give a user name or uid from the user database", name)
	}
	id := &Identity{Name: u.Username, Home: u.HomeDir, Why: "asked for"}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	id.UID, id.GID = uint32(uid), uint32(gid)
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("reading the groups of %s: %w", name, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %s: group id %q: %w", name, g, err)
		}
		id.Groups = append(id.Groups, uint32(n))
	}
	return id, nil
}

// FromSudo is the user who ran sudo (SUDO_UID), nil when cgpeak was not
// started by sudo as root or that user is root.
func FromSudo(euid int, getenv func(string) string) (*Identity, error) {
	s := getenv("SUDO_UID")
	if euid != 0 || s == "" || s == "0" {
		return nil, nil
	}
	id, err := Lookup(s)
	if err != nil {
		return nil, fmt.Errorf("SUDO_UID=%s: %w", s, err)
	}
	id.Why = "the user who ran sudo"
	return id, nil
}

// Env is env with HOME, USER and LOGNAME of the identity.
func (id *Identity) Env(env []string) []string {
	out := make([]string, 0, len(env)+3)
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if k == "HOME" || k == "USER" || k == "LOGNAME" {
			continue
		}
		out = append(out, e)
	}
	return append(out, "HOME="+id.Home, "USER="+id.Name, "LOGNAME="+id.Name)
}

// String is how reports name it.
func (id *Identity) String() string {
	return fmt.Sprintf("%s (uid %d, gid %d; %s)", id.Name, id.UID, id.GID, id.Why)
}

// Self reports whether the identity is the user cgpeak already runs as.
func (id *Identity) Self() bool {
	return id.UID == uint32(os.Geteuid()) && id.GID == uint32(os.Getegid())
}
