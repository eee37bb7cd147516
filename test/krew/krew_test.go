// Package krew tests the plugin's krew manifest template (plugins/secrets-manager.yaml) with
// krew's own Go types: the template and a rendered manifest parse strictly, follow krew's index
// rules, name exactly the archives `make release-plugin` builds (internal/krewrelease is the
// one list of platforms both use), and every file a platform installs is in its archive.
package krew

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/krew/pkg/index"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/krewrelease"
)

const root = "../.."

// krew's constants (sigs.k8s.io/krew/pkg/constants) for the index format.
const (
	apiVersion = "krew.googlecontainertools.github.com/v1alpha2"
	kind       = "Plugin"
)

func readTemplate(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, krewrelease.ManifestTemplate))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// parse decodes a manifest strictly into krew's types: an unknown or misspelt field fails.
func parse(t *testing.T, data []byte) index.Plugin {
	t.Helper()
	var p index.Plugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("not a krew manifest: %v", err)
	}
	return p
}

// validate applies krew's index validation (krew's internal/index/validation): names, version,
// descriptions, and for each platform a uri, a sha256, a selector, files and bin.
func validate(t *testing.T, p index.Plugin, rendered bool) {
	t.Helper()
	if p.APIVersion != apiVersion || p.Kind != kind {
		t.Errorf("apiVersion/kind %s/%s", p.APIVersion, p.Kind)
	}
	// krew: the name is the file name without .yaml; kubectl-<name with - as _> is the binary.
	if p.Name != krewrelease.PluginName || krewrelease.RenderedName != p.Name+".yaml" || filepath.Base(krewrelease.ManifestTemplate) != p.Name+".yaml" {
		t.Errorf("name %q, files %s and %s", p.Name, krewrelease.RenderedName, krewrelease.ManifestTemplate)
	}
	if "kubectl-"+strings.ReplaceAll(p.Name, "-", "_") != krewrelease.BinaryName {
		t.Errorf("krew links plugin %s as kubectl-%s, not %s", p.Name, strings.ReplaceAll(p.Name, "-", "_"), krewrelease.BinaryName)
	}
	if p.Spec.ShortDescription == "" || p.Spec.Description == "" || !strings.HasPrefix(p.Spec.Homepage, "https://") {
		t.Errorf("shortDescription %q, description %q, homepage %q", p.Spec.ShortDescription, p.Spec.Description, p.Spec.Homepage)
	}
	if rendered {
		if err := krewrelease.CheckVersion(p.Spec.Version); err != nil {
			t.Error(err)
		}
	}
	if len(p.Spec.Platforms) == 0 {
		t.Fatal("no platforms")
	}
	for i, pl := range p.Spec.Platforms {
		if pl.URI == "" || pl.Sha256 == "" || pl.Selector == nil || len(pl.Files) == 0 || pl.Bin == "" {
			t.Errorf("platform %d lacks uri, sha256, selector, files or bin: %+v", i, pl)
			continue
		}
		if _, err := metav1.LabelSelectorAsSelector(pl.Selector); err != nil {
			t.Errorf("platform %d: selector: %v", i, err)
		}
		for _, f := range pl.Files {
			if f.From == "" || f.To == "" {
				t.Errorf("platform %d: a file without from or to: %+v", i, f)
			}
		}
		if pl.Bin != krewrelease.BinaryName || !installs(pl, pl.Bin) {
			t.Errorf("platform %d: bin %q is not %s, or no file operation installs it", i, pl.Bin, krewrelease.BinaryName)
		}
		if rendered {
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pl.Sha256) || !strings.HasPrefix(pl.URI, "https://") {
				t.Errorf("platform %d: uri %q, sha256 %q", i, pl.URI, pl.Sha256)
			}
		}
	}
}

// installs says whether a platform's file operations put name at the install root.
func installs(pl index.Platform, name string) bool {
	for _, f := range pl.Files {
		if ok, _ := filepath.Match(f.From, name); ok && (f.To == "." || f.To == name) {
			return true
		}
	}
	return false
}

// matching is the platforms whose selector matches os/arch, as krew selects them.
func matching(t *testing.T, p index.Plugin, os, arch string) []index.Platform {
	t.Helper()
	var out []index.Platform
	for _, pl := range p.Spec.Platforms {
		sel, err := metav1.LabelSelectorAsSelector(pl.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Matches(labels.Set{"os": os, "arch": arch}) {
			out = append(out, pl)
		}
	}
	return out
}

// Each released platform is matched by exactly one entry, and nothing else is.
func checkPlatforms(t *testing.T, p index.Plugin) {
	t.Helper()
	released := map[string]bool{}
	for _, rp := range krewrelease.Platforms {
		released[rp.String()] = true
		if m := matching(t, p, rp.OS, rp.Arch); len(m) != 1 {
			t.Errorf("%s is matched by %d platforms, want 1", rp, len(m))
		}
	}
	for _, os := range []string{"linux", "darwin", "windows", "freebsd"} {
		for _, arch := range []string{"amd64", "arm64", "386", "arm", "ppc64le", "s390x"} {
			if m := matching(t, p, os, arch); !released[os+"/"+arch] && len(m) != 0 {
				t.Errorf("%s/%s is not released but %d platforms match it", os, arch, len(m))
			}
		}
	}
	if len(p.Spec.Platforms) != len(krewrelease.Platforms) {
		t.Errorf("%d platforms in the manifest, %d released", len(p.Spec.Platforms), len(krewrelease.Platforms))
	}
}

func values() krewrelease.Values {
	v := krewrelease.Values{Version: "v1.2.3", ReleaseURL: "https://github.com/kube-secrets-manager/kube-secrets-manager/releases/download/v1.2.3", SHA256: map[string]string{}}
	for i, p := range krewrelease.Platforms {
		sum := sha256.Sum256([]byte{byte(i)})
		v.SHA256[p.Key()] = hex.EncodeToString(sum[:])
	}
	return v
}

func TestTemplateIsAKrewManifest(t *testing.T) {
	tmpl := readTemplate(t)
	p := parse(t, tmpl)
	validate(t, p, false)
	checkPlatforms(t, p)
	// Its placeholders are the ones Render fills.
	for _, want := range []string{"{{ .Version }}", "{{ .ReleaseURL }}"} {
		if !strings.Contains(string(tmpl), want) {
			t.Errorf("the template lacks %s", want)
		}
	}
	for _, rp := range krewrelease.Platforms {
		if !strings.Contains(string(tmpl), "{{ .SHA256."+rp.Key()+" }}") {
			t.Errorf("the template has no sha256 placeholder for %s", rp)
		}
	}
}

func TestRenderedManifestNamesTheReleasedArchives(t *testing.T) {
	v := values()
	out, err := krewrelease.Render(readTemplate(t), v)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "{{") {
		t.Fatalf("placeholders left:\n%s", out)
	}
	p := parse(t, out)
	validate(t, p, true)
	checkPlatforms(t, p)
	if p.Spec.Version != v.Version {
		t.Errorf("version %q", p.Spec.Version)
	}
	for _, rp := range krewrelease.Platforms {
		m := matching(t, p, rp.OS, rp.Arch)
		if len(m) != 1 {
			continue
		}
		if want := v.ReleaseURL + "/" + rp.Archive(v.Version); m[0].URI != want {
			t.Errorf("%s: uri %q, release-plugin builds %q", rp, m[0].URI, want)
		}
		if m[0].Sha256 != v.SHA256[rp.Key()] {
			t.Errorf("%s: sha256 %q, want %q", rp, m[0].Sha256, v.SHA256[rp.Key()])
		}
	}
	// A missing checksum or a bad version is refused, not rendered empty.
	delete(v.SHA256, krewrelease.Platforms[0].Key())
	if _, err := krewrelease.Render(readTemplate(t), v); err == nil {
		t.Error("rendered without a checksum")
	}
	if _, err := krewrelease.Render(readTemplate(t), krewrelease.Values{Version: "1.2.3", ReleaseURL: "https://x", SHA256: values().SHA256}); err == nil {
		t.Error("rendered a version without v")
	}
}

// Package (what release-plugin runs after building) makes the archives the rendered manifest
// names, with the checksums it records, holding every file the manifest installs.
func TestPackagedArchivesMatchTheManifest(t *testing.T) {
	builds, out := t.TempDir(), t.TempDir()
	for _, rp := range krewrelease.Platforms {
		path := filepath.Join(builds, rp.BuildPath())
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("binary for "+rp.String()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The extra files release-plugin passes (those that exist in the repository are packed).
	extra := []string{filepath.Join(root, "README.md"), filepath.Join(root, "LICENSE")}
	opts := krewrelease.Options{Version: "v0.3.0-rc.1", BuildDir: builds, OutDir: out, Extra: extra, ModTime: time.Unix(1700000000, 0)}
	sums, err := krewrelease.Package(opts)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://example.com/releases/v0.3.0-rc.1"
	rendered, err := krewrelease.Render(readTemplate(t), krewrelease.Values{Version: opts.Version, ReleaseURL: url, SHA256: sums})
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, rendered)
	validate(t, p, true)
	for _, rp := range krewrelease.Platforms {
		m := matching(t, p, rp.OS, rp.Arch)
		if len(m) != 1 {
			t.Fatalf("%s: %d platforms", rp, len(m))
		}
		name := strings.TrimPrefix(m[0].URI, url+"/")
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: the manifest names %s, which Package did not make: %v", rp, name, err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m[0].Sha256 {
			t.Errorf("%s: the manifest's sha256 is not the archive's", rp)
		}
		entries := untar(t, data)
		if string(entries[krewrelease.BinaryName].data) != "binary for "+rp.String() || entries[krewrelease.BinaryName].mode != 0o755 {
			t.Errorf("%s: the binary in %s: %+v", rp, name, entries[krewrelease.BinaryName])
		}
		// What the manifest installs is exactly what the archive holds.
		var froms, held []string
		for _, f := range m[0].Files {
			froms = append(froms, f.From)
		}
		for n := range entries {
			held = append(held, n)
		}
		sort.Strings(froms)
		sort.Strings(held)
		if strings.Join(froms, ",") != strings.Join(held, ",") {
			t.Errorf("%s: the manifest installs %v, the archive holds %v", rp, froms, held)
		}
	}
	// Archives of the same binaries are identical.
	again := t.TempDir()
	opts.OutDir = again
	sums2, err := krewrelease.Package(opts)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sums {
		if sums2[k] != v {
			t.Errorf("%s: packing twice gave different archives", k)
		}
	}
	// A missing binary fails the release.
	if err := os.Remove(filepath.Join(builds, krewrelease.Platforms[1].BuildPath())); err != nil {
		t.Fatal(err)
	}
	opts.OutDir = t.TempDir()
	if _, err := krewrelease.Package(opts); err == nil {
		t.Error("packed without a platform's binary")
	}
}

type entry struct {
	data []byte
	mode int64
}

func untar(t *testing.T, data []byte) map[string]entry {
	t.Helper()
	gz, err := gzip.NewReader(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = entry{b, h.Mode}
	}
}

// release-plugin builds each platform krewrelease lists, at its build path, with CGO off, and
// packs them with this template.
func TestMakefileReleasesWhatTheManifestNames(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?ms)^release-plugin:[^\n]*\n((?:\t[^\n]*\n)+)`).FindSubmatch(data)
	if recipe == nil {
		t.Fatal("no release-plugin target in the Makefile")
	}
	r := string(recipe[1])
	for _, want := range []string{
		"$(GO) run ./hack/krew-release platforms",
		"CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build",
		"-o $(RELEASE_DIR)/build/$$out .",
		"$(GO) run ./hack/krew-release package",
		"-builds $(RELEASE_DIR)/build",
		"-template " + krewrelease.ManifestTemplate,
		"README.md LICENSE",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("release-plugin does not run %q:\n%s", want, r)
		}
	}
	if !regexp.MustCompile(`(?m)^RELEASE_DIR := \$\(LOCALBIN\)/release$`).Match(data) {
		t.Error("release-plugin does not write under bin/ (ignored by git)")
	}
}

// After `make release-plugin`, the rendered manifest in bin/release is checked against the
// archives beside it (skipped when no release was built).
func TestBuiltReleaseIfAny(t *testing.T) {
	dir := filepath.Join(root, "bin", "release")
	data, err := os.ReadFile(filepath.Join(dir, krewrelease.RenderedName))
	if os.IsNotExist(err) {
		t.Skip("no release built (make release-plugin)")
	}
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, data)
	validate(t, p, true)
	checkPlatforms(t, p)
	for _, rp := range krewrelease.Platforms {
		m := matching(t, p, rp.OS, rp.Arch)
		if len(m) != 1 {
			continue
		}
		name := rp.Archive(p.Spec.Version)
		if !strings.HasSuffix(m[0].URI, "/"+name) {
			t.Errorf("%s: uri %q does not name %s", rp, m[0].URI, name)
		}
		archive, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", rp, err)
		}
		if sum := sha256.Sum256(archive); hex.EncodeToString(sum[:]) != m[0].Sha256 {
			t.Errorf("%s: the manifest's sha256 is not %s's", rp, name)
		}
		if e := untar(t, archive)[krewrelease.BinaryName]; e.mode != 0o755 || len(e.data) == 0 {
			t.Errorf("%s: no executable %s in %s", rp, krewrelease.BinaryName, name)
		}
	}
}
