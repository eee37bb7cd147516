// Package krewrelease packages the kubectl plugin for krew: the platforms released, the archive
// names, the tar.gz archives and the manifest rendered from plugins/secrets-manager.yaml. The
// Makefile's release-plugin target (through hack/krew-release) and the manifest's tests both use
// it, so the archives built and the archives the manifest names cannot drift apart.
package krewrelease

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"text/template"
	"time"
)

// BinaryName is the plugin's executable, in every archive and on PATH.
const BinaryName = "kubectl-secrets_manager"

// ManifestTemplate is the manifest template, relative to the repository root; RenderedName is
// the rendered manifest's file name (krew wants it to be the plugin's name).
const (
	ManifestTemplate = "plugins/secrets-manager.yaml"
	RenderedName     = "secrets-manager.yaml"
	PluginName       = "secrets-manager"
)

// Platform is an os/arch pair krew selects on.
type Platform struct{ OS, Arch string }

// Platforms are the platforms released, each an archive and a manifest entry.
var Platforms = []Platform{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"darwin", "amd64"},
	{"darwin", "arm64"},
}

// Key names the platform in the template's .SHA256 map: linux_amd64.
func (p Platform) Key() string { return p.OS + "_" + p.Arch }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Archive is the platform's archive name for a version.
func (p Platform) Archive(version string) string {
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", BinaryName, version, p.OS, p.Arch)
}

// BuildPath is where release-plugin builds the platform's binary, relative to the build folder.
func (p Platform) BuildPath() string { return filepath.Join(p.OS+"-"+p.Arch, BinaryName) }

// versionPattern is krew's version rule: "v" and a semantic version.
var versionPattern = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// CheckVersion refuses a version krew would refuse.
func CheckVersion(v string) error {
	if !versionPattern.MatchString(v) {
		return fmt.Errorf("version %q is not v followed by a semantic version (v1.2.3)", v)
	}
	return nil
}

// Values fill the manifest template.
type Values struct {
	// Version is the release's version, v1.2.3.
	Version string
	// ReleaseURL is where the archives are downloaded from, without a trailing slash.
	ReleaseURL string
	// SHA256 is each archive's checksum, by Platform.Key.
	SHA256 map[string]string
}

// Render fills the manifest template; a placeholder without a value is an error.
func Render(tmpl []byte, v Values) ([]byte, error) {
	if err := CheckVersion(v.Version); err != nil {
		return nil, err
	}
	t, err := template.New(ManifestTemplate).Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Options say what Package packs.
type Options struct {
	Version string
	// BuildDir holds each platform's binary at Platform.BuildPath.
	BuildDir string
	// OutDir receives the archives.
	OutDir string
	// Extra files (README.md, LICENSE) are added beside the binary when they exist.
	Extra []string
	// ModTime is every archive entry's time, so archives of the same binaries are identical.
	ModTime time.Time
}

// Package writes one tar.gz per platform (the binary, mode 0755, and the extra files) and returns
// the archives' checksums by Platform.Key.
func Package(o Options) (map[string]string, error) {
	if err := CheckVersion(o.Version); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	type file struct {
		name string
		data []byte
		mode int64
	}
	var extra []file
	for _, path := range o.Extra {
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		extra = append(extra, file{filepath.Base(path), data, 0o644})
	}
	sums := map[string]string{}
	for _, p := range Platforms {
		bin, err := os.ReadFile(filepath.Join(o.BuildDir, p.BuildPath()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w (release-plugin builds it)", p, err)
		}
		var buf bytes.Buffer
		gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		tw := tar.NewWriter(gz)
		for _, f := range append([]file{{BinaryName, bin, 0o755}}, extra...) {
			hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: o.ModTime.UTC(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
		if err := tw.Close(); err != nil {
			return nil, err
		}
		if err := gz.Close(); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(buf.Bytes())
		sums[p.Key()] = hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(o.OutDir, p.Archive(o.Version)), buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	return sums, nil
}

// WriteChecksums writes sha256sum's format: "<sha256>  <archive>" per platform.
func WriteChecksums(w io.Writer, version string, sums map[string]string) error {
	for _, p := range Platforms {
		if _, err := fmt.Fprintf(w, "%s  %s\n", sums[p.Key()], p.Archive(version)); err != nil {
			return err
		}
	}
	return nil
}
