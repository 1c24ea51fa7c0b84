package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	// NoPull: never pull on the host (IMAGE_PULL=0, air-gapped): an image the host lacks is
	// unavailable at once, and no registry (nor a DNS server for its name) is asked.
	NoPull bool
	// Optional are images the run can do without: one neither on the host nor pullable is a
	// warning (listed in PreloadResult.Unavailable), not an error, since only the specs whose
	// pods run it need it (e.g. the mysql sample on an air-gapped host), and a node whose
	// containerd has a mirror the host lacks may still pull it.
	Optional []string
}

// PreloadResult says what Preload did, per image.
type PreloadResult struct {
	Pulled, Loaded, Present []string // Loaded entries are "image → node"
	// OnHost lists images the host's engine already had (docker image inspect): saved and
	// loaded as they are, never pulled, so that an air-gapped host can preload what it built or
	// `docker load`ed under the manifests' own names.
	OnHost []string
	// NotVisible lists images loaded that crictl still does not show under their reference
	// (e.g. digest references of a `docker save` archive): the node pulls those itself.
	NotVisible []string
	// NotLoaded lists "image → node: why" for images that could not be saved or loaded: a
	// warning, not a failure, since the node pulls what it lacks when a pod needs it.
	NotLoaded []string
	// Unavailable lists the Optional images neither on the host nor pullable.
	Unavailable []string
}

// Preload makes every image available on every node: pulled on the host when missing there
// (with retries), saved once per node platform, and loaded (with retries) into the nodes that
// lack it. A save or load that fails is a warning naming the image and the node, which will
// pull the image itself; a pull that fails is an error (the host cannot get the image, so
// the node would not either), returned once the other images are loaded so that it names
// every image the host lacks.
//
// Saving: under Docker's containerd image store, `docker save` of a multi-arch image writes
// an index naming every platform while the store holds the blobs of one, and kind's
// nodeutils.LoadImageArchive (`ctr images import --all-platforms --digests`) then fails with
// "content digest … not found" (kind issue 3795; kind's docs, PR 4247, give `docker image save
// --platform` as the workaround). So when the engine's API is 1.48 or newer the archive holds
// the node's platform only (`docker save --platform linux/<arch>`, arch from `uname -m` in the
// node); older engines save everything and, if the load fails, the node pulls the image.
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
	var plat *savePlatforms // asked for once, when an image is first missing somewhere
	var unavailable []error // images neither on the host nor pullable
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
			if ctx.Err() != nil {
				return res, err
			}
			if slices.Contains(p.Optional, img) {
				res.Unavailable = append(res.Unavailable, img)
				p.logf("warning: %v; it is optional: only the specs whose pods run it need it, and they fail unless the nodes can pull it", err)
				continue
			}
			// Load the others first: one run then names every image an air-gapped host lacks.
			unavailable = append(unavailable, err)
			continue
		}
		if pulled {
			res.Pulled = append(res.Pulled, img)
		} else {
			res.OnHost = append(res.OnHost, img)
		}
		if plat == nil {
			plat = p.platforms(ctx)
		}
		archives := map[string]string{} // by platform ("" when saved whole)
		saveErrs := map[string]error{}
		for _, n := range missing {
			platform := plat.of(ctx, n)
			archive, saved := archives[platform]
			if !saved && saveErrs[platform] == nil {
				archive, err = p.save(ctx, img, platform)
				if err != nil && ctx.Err() != nil {
					return res, err // interrupted: not a reason to leave it to the nodes
				}
				if err != nil {
					saveErrs[platform] = err
				} else {
					archives[platform] = archive
				}
			}
			if err := saveErrs[platform]; err != nil {
				p.warnNotLoaded(&res, img, n, err)
				continue
			}
			start := time.Now()
			err := Retry(ctx, p.backoff(), fmt.Sprintf("load %s into node %s", img, n), func(ctx context.Context) error {
				return p.loadInto(n, archive)
			})
			if err != nil {
				if ctx.Err() != nil {
					return res, err // interrupted: not a reason to leave it to the nodes
				}
				p.warnNotLoaded(&res, img, n, err)
				continue
			}
			res.Loaded = append(res.Loaded, img+" → "+n.String())
			p.logf("image %s: loaded into %s (%s)", img, n, time.Since(start).Round(100*time.Millisecond))
			if now, err := ListNodeImages(ctx, n); err == nil && !now.Has(img) {
				res.NotVisible = append(res.NotVisible, img+" on "+n.String())
				p.logf("image %s: loaded but not listed under that reference on %s; the node will pull it", img, n)
			}
		}
		for _, a := range archives {
			_ = os.Remove(a)
		}
	}
	if len(unavailable) > 0 {
		return res, fmt.Errorf("%d of %d images are neither on the host nor pullable (the others were loaded):\n%w",
			len(unavailable), len(images), errors.Join(unavailable...))
	}
	return res, nil
}

func (p Preloader) warnNotLoaded(res *PreloadResult, img string, n Node, err error) {
	why := err.Error()
	res.NotLoaded = append(res.NotLoaded, fmt.Sprintf("%s → %s: %s", img, n, why))
	p.logf("warning: image %s: not loaded into node %s; the node will pull it from its registry when a pod needs it (%s)", img, n, why)
}

// savePlatforms decides what `docker save` writes for each node: its platform when the engine
// takes --platform, else everything.
type savePlatforms struct {
	p       Preloader
	enabled bool
	byNode  map[string]string
}

func (p Preloader) platforms(ctx context.Context) *savePlatforms {
	sp := &savePlatforms{p: p, byNode: map[string]string{}}
	api, err := p.Docker.APIVersion(ctx)
	switch {
	case err != nil:
		p.logf("images: engine API version unknown (%v): saving every platform; a failed load leaves the image to the node", err)
	case !APIAtLeast(api, SavePlatformAPI):
		p.logf("images: engine API %s is older than %s, so docker save cannot pick a platform: a multi-arch image under the containerd image store may fail to load (kind issue 3795), and the node then pulls it",
			api, SavePlatformAPI)
	default:
		sp.enabled = true
	}
	return sp
}

// of is the platform to save for node n ("" for everything).
func (sp *savePlatforms) of(ctx context.Context, n Node) string {
	if !sp.enabled {
		return ""
	}
	if pl, ok := sp.byNode[n.String()]; ok {
		return pl
	}
	pl, err := NodePlatform(ctx, n)
	if err != nil {
		sp.p.logf("images: platform of node %s unknown (%v): saving every platform", n, err)
	}
	sp.byNode[n.String()] = pl
	return pl
}

// NodePlatform is the OCI platform ("linux/amd64") of a kind node, from `uname -m` in it.
func NodePlatform(ctx context.Context, n Node) (string, error) {
	var stdout, stderr bytes.Buffer
	if err := n.CommandContext(ctx, "uname", "-m").SetStdout(&stdout).SetStderr(&stderr).Run(); err != nil {
		return "", fmt.Errorf("uname -m: %w: %s", err, firstLines(strings.TrimSpace(stderr.String()), 3))
	}
	m := strings.TrimSpace(stdout.String())
	arch, ok := unameArch[m]
	if !ok {
		return "", fmt.Errorf("uname -m says %q, not an architecture meshconform knows", m)
	}
	return "linux/" + arch, nil
}

// unameArch maps the kernel's machine names to the GOARCH-style names OCI platforms use
// (the OCI image index spec: "architecture … values SHOULD conform to GOARCH").
var unameArch = map[string]string{
	"x86_64":  "amd64",
	"amd64":   "amd64",
	"aarch64": "arm64",
	"arm64":   "arm64",
	"armv7l":  "arm/v7",
	"armv6l":  "arm/v6",
	"ppc64le": "ppc64le",
	"s390x":   "s390x",
	"riscv64": "riscv64",
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

// ensureOnHost pulls img unless the host has it; it reports whether it pulled. An image the
// host's engine already holds is used as it is, whatever registry its name points at: that is
// how an air-gapped host preloads images it built or `docker load`ed.
func (p Preloader) ensureOnHost(ctx context.Context, img string) (bool, error) {
	ok, err := p.Docker.HasImage(ctx, img)
	if err != nil {
		return false, err
	}
	if ok {
		p.logf("image %s: present on the host, not pulled", img)
		return false, nil
	}
	if p.NoPull {
		return false, fmt.Errorf("image %s is not on the host, and IMAGE_PULL=0 forbids pulling it; "+
			"load it with `docker load` (scripts/workload-images.sh builds the curl, go-httpbin and nginx "+
			"samples' images), or allow pulls", img)
	}
	start := time.Now()
	err = Retry(ctx, p.backoff(), "docker pull "+img, func(ctx context.Context) error {
		return p.Docker.Pull(ctx, img)
	})
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		return false, fmt.Errorf("image %s is not on the host and cannot be pulled; docker pull it, or, "+
			"on a machine without registry access, load it with `docker load` (scripts/workload-images.sh "+
			"builds the curl, go-httpbin and nginx samples' images) and run again: %w", img, err)
	}
	p.logf("image %s: pulled (%s)", img, time.Since(start).Round(100*time.Millisecond))
	return true, nil
}

// save writes img (of platform, or whole when "") to an archive named after both in Dir.
func (p Preloader) save(ctx context.Context, img, platform string) (string, error) {
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return "", fmt.Errorf("image archive directory: %w", err)
	}
	name := img
	what := "docker save " + img
	if platform != "" {
		name += " " + platform
		what = "docker save --platform " + platform + " " + img
	}
	path := filepath.Join(p.Dir, ArchiveName(name))
	tmp := path + ".tmp"
	err := Retry(ctx, p.backoff(), what, func(ctx context.Context) error {
		err := p.Docker.Save(ctx, tmp, platform, img)
		if platform != "" && saveLacksPlatform(err) {
			return Permanent(fmt.Errorf("%w: %w", errSaveNoPlatform, err))
		}
		return err
	})
	if err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, errSaveNoPlatform) {
			p.logf("images: %v; saving every platform of %s instead", err, img)
			return p.save(ctx, img, "")
		}
		return "", err
	}
	return path, os.Rename(tmp, path)
}

var errSaveNoPlatform = errors.New("this docker cannot save one platform")

// saveLacksPlatform recognises a docker CLI older than --platform ("unknown flag: --platform")
// and a CLI that knows it while the engine's API is too old ("… requires API version 1.48").
func saveLacksPlatform(err error) bool {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return false
	}
	return strings.Contains(ce.Stderr, "unknown flag: --platform") || strings.Contains(ce.Stderr, "requires API version")
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
	err = load(n, f)
	re := kindexec.RunErrorForError(err)
	if re == nil {
		return err
	}
	// kind's error names the command only; what ctr said is the useful part.
	out := strings.TrimSpace(string(re.Output))
	if out != "" {
		err = fmt.Errorf("%w: %s", err, firstLines(out, 3))
	}
	if missingBlob(out) {
		// The archive names content it lacks (kind issue 3795): the same archive fails again.
		return Permanent(err)
	}
	return err
}

// missingBlob recognises ctr's import error for an archive that lacks a blob its index names:
// "ctr: content digest sha256:…: not found" (kind issue 3795).
func missingBlob(out string) bool {
	return strings.Contains(out, "content digest") && strings.Contains(out, "not found")
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
