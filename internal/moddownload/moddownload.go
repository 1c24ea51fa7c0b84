// Package moddownload puts one module version into the Go module cache and says where: `go mod
// download -json` run in an empty directory outside any module, so that meshconform's go.mod
// and go.sum are neither read nor changed (the module is data or source to build, not a
// dependency). GOPROXY, GOFLAGS, GONOSUMDB/GOSUMDB and GOMODCACHE apply as for any module.
package moddownload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
)

// Dir returns the directory of module@version in the module cache, downloading it when
// needed. Its error is the go command's own reason, for the caller to wrap with its fix.
func Dir(ctx context.Context, module, version string) (string, error) {
	tmp, err := os.MkdirTemp("", "moddownload-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res struct{ Dir, Error string }
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" || res.Dir == "" || runErr != nil {
		why := res.Error
		if why == "" {
			why = strings.TrimSpace(stderr.String())
		}
		if why == "" && runErr != nil {
			why = runErr.Error()
		}
		if why == "" {
			why = "no directory in go mod download's answer"
		}
		return "", errors.New(why)
	}
	return res.Dir, nil
}
