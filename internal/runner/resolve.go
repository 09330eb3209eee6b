package runner

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Resolve finds a command's program in PATH as execve will run it. Its
// *ExecError says why not, with the code a shell gives: 127 not found, 126
// found but not runnable.
func Resolve(name string) (string, error) {
	path, err := exec.LookPath(name)
	switch {
	case err == nil:
		return path, nil
	case errors.Is(err, exec.ErrDot):
		// Found only through "." (or an empty entry) in PATH, which Go's
		// lookup refuses: saying "chmod +x" would mislead.
		return "", &ExecError{fmt.Sprintf("%s: found only in the current directory through PATH; run it as ./%s", name, name), ExitNotFound}
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		return "", &ExecError{fmt.Sprintf("%s: command not found (check the name and PATH)", name), ExitNotFound}
	}
	if st, serr := os.Stat(name); serr == nil && st.IsDir() {
		return "", &ExecError{fmt.Sprintf("%s: is a directory, not a program", name), ExitNoExec}
	}
	return "", &ExecError{fmt.Sprintf("%s: not executable: %v (chmod +x it)", name, err), ExitNoExec}
}
