package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// Node is what image loading needs of a kind node: a name and a way to run commands in it.
// kind's nodes.Node satisfies it.
type Node interface {
	String() string
	Command(name string, args ...string) kindexec.Cmd
	CommandContext(ctx context.Context, name string, args ...string) kindexec.Cmd
}

// NodeImages is the set of images a node's containerd holds, as crictl reports them.
type NodeImages struct {
	tags, digests map[string]bool
}

// ParseCrictlImages reads the output of `crictl images -o json`.
func ParseCrictlImages(data []byte) (NodeImages, error) {
	var out struct {
		Images []struct {
			RepoTags    []string `json:"repoTags"`
			RepoDigests []string `json:"repoDigests"`
		} `json:"images"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return NodeImages{}, fmt.Errorf("crictl images: %w", err)
	}
	n := NodeImages{tags: map[string]bool{}, digests: map[string]bool{}}
	for _, img := range out.Images {
		for _, t := range img.RepoTags {
			n.tags[t] = true
		}
		for _, d := range img.RepoDigests {
			n.digests[d] = true
		}
	}
	return n, nil
}

// Has reports whether the node can start a container from image without pulling: by digest
// when the reference has one (a tag next to a digest is ignored, as by the kubelet), else by tag.
func (n NodeImages) Has(image string) bool {
	r, err := ParseImageRef(image)
	if err != nil {
		return false
	}
	if r.Digest != "" {
		return n.digests[r.FullName()+"@"+r.Digest]
	}
	return n.tags[r.Canonical()]
}

// ListNodeImages runs crictl in the node.
func ListNodeImages(ctx context.Context, node Node) (NodeImages, error) {
	var stdout, stderr bytes.Buffer
	err := node.CommandContext(ctx, "crictl", "images", "-o", "json").SetStdout(&stdout).SetStderr(&stderr).Run()
	if err != nil {
		return NodeImages{}, fmt.Errorf("node %s: crictl images: %w: %s", node, err, firstLines(strings.TrimSpace(stderr.String()), 3))
	}
	return ParseCrictlImages(stdout.Bytes())
}

// Preloader pulls images once on the host and loads them into kind nodes, so that pods start
// without each node pulling (slow, rate-limited, flaky in CI).
type Preloader struct {
	Docker Docker
	// Dir holds the image archives (docker save) while they are loaded; each is removed once
	// every node has it (they are hundreds of MB, and a tag may move before the next run).
	Dir     string
	Backoff Backoff
	Log     io.Writer
	// LoadArchive loads one archive into a node; nil is kind's nodeutils.LoadImageArchive.
	LoadArchive func(node Node, archive io.Reader) error
}

// PreloadResult says what Preload did, per image.
type PreloadResult struct {
	Pulled, Loaded, Present []string // Loaded entries are "image → node"
	// NotVisible lists images loaded that crictl still does not show under their reference
	// (e.g. digest references of a `docker save` archive): the node pulls those itself.
	NotVisible []string
}

// Preload makes every image available on every node: pulled on the host when missing there
// (with retries), saved once, and loaded (with retries) into the nodes that lack it.
func (p Preloader) Preload(ctx context.Context, nodes []Node, images []string) (PreloadResult, error) {
	var res PreloadResult
	images = dedupe(images)
	for _, img := range images {
		if _, err := ParseImageRef(img); err != nil {
			return res, err
		}
	}
	have := make(map[string]NodeImages, len(nodes))
	for _, n := range nodes {
		var imgs NodeImages
		err := Retry(ctx, p.backoff(), "list images on node "+n.String(), func(ctx context.Context) error {
			var err error
			imgs, err = ListNodeImages(ctx, n)
			return err
		})
		if err != nil {
			return res, err
		}
		have[n.String()] = imgs
	}
	for _, img := range images {
		var missing []Node
		for _, n := range nodes {
			if !have[n.String()].Has(img) {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			res.Present = append(res.Present, img)
			p.logf("image %s: already on every node", img)
			continue
		}
		pulled, err := p.ensureOnHost(ctx, img)
		if err != nil {
			return res, err
		}
		if pulled {
			res.Pulled = append(res.Pulled, img)
		}
		archive, err := p.save(ctx, img)
		if err != nil {
			return res, err
		}
		for _, n := range missing {
			start := time.Now()
			err := Retry(ctx, p.backoff(), fmt.Sprintf("load %s into node %s", img, n), func(ctx context.Context) error {
				return p.loadInto(n, archive)
			})
			if err != nil {
				return res, err
			}
			res.Loaded = append(res.Loaded, img+" → "+n.String())
			p.logf("image %s: loaded into %s (%s)", img, n, time.Since(start).Round(100*time.Millisecond))
			if now, err := ListNodeImages(ctx, n); err == nil && !now.Has(img) {
				res.NotVisible = append(res.NotVisible, img+" on "+n.String())
				p.logf("image %s: loaded but not listed under that reference on %s; the node will pull it", img, n)
			}
		}
		_ = os.Remove(archive)
	}
	return res, nil
}

func (p Preloader) backoff() Backoff {
	if p.Backoff.Attempts == 0 {
		return DefaultBackoff
	}
	return p.Backoff
}

func (p Preloader) logf(format string, args ...any) {
	if p.Log != nil {
		fmt.Fprintf(p.Log, format+"\n", args...)
	}
}

// ensureOnHost pulls img unless the host has it; it reports whether it pulled.
func (p Preloader) ensureOnHost(ctx context.Context, img string) (bool, error) {
	ok, err := p.Docker.HasImage(ctx, img)
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	start := time.Now()
	err = Retry(ctx, p.backoff(), "docker pull "+img, func(ctx context.Context) error {
		return p.Docker.Pull(ctx, img)
	})
	if err != nil {
		return false, err
	}
	p.logf("image %s: pulled (%s)", img, time.Since(start).Round(100*time.Millisecond))
	return true, nil
}

// save writes img to an archive named after it in Dir.
func (p Preloader) save(ctx context.Context, img string) (string, error) {
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return "", fmt.Errorf("image archive directory: %w", err)
	}
	path := filepath.Join(p.Dir, ArchiveName(img))
	tmp := path + ".tmp"
	err := Retry(ctx, p.backoff(), "docker save "+img, func(ctx context.Context) error {
		return p.Docker.Save(ctx, tmp, img)
	})
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return path, os.Rename(tmp, path)
}

func (p Preloader) loadInto(n Node, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return Permanent(err)
	}
	defer f.Close()
	load := p.LoadArchive
	if load == nil {
		load = func(n Node, r io.Reader) error { return nodeutils.LoadImageArchive(asKindNode(n), r) }
	}
	return load(n, f)
}

var archiveUnsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// ArchiveName is a file name for img's archive: readable, and distinct per reference.
func ArchiveName(img string) string {
	sum := sha256.Sum256([]byte(img))
	name := strings.Trim(archiveUnsafe.ReplaceAllString(img, "_"), "_")
	if len(name) > 100 {
		name = name[:100]
	}
	return name + "-" + hex.EncodeToString(sum[:4]) + ".tar"
}

// asKindNode gives kind's node helpers the nodes.Node they ask for; they only run commands.
func asKindNode(n Node) nodes.Node {
	if kn, ok := n.(nodes.Node); ok {
		return kn
	}
	return commandNode{n}
}

type commandNode struct{ Node }

func (commandNode) Role() (string, error)        { return "", nil }
func (commandNode) IP() (string, string, error)  { return "", "", nil }
func (commandNode) SerialLogs(w io.Writer) error { return nil }

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
