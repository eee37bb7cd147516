// Command krew-release is the Go half of `make release-plugin`:
//
//	krew-release platforms
//	    prints "OS ARCH BUILD_PATH" per released platform, for the Makefile to build
//	krew-release package -version V -release-url URL -builds DIR -out DIR -template FILE [EXTRA...]
//	    packs each binary (and the EXTRA files that exist) into OUT/<archive>.tar.gz, renders the
//	    manifest into OUT/secrets-manager.yaml, writes OUT/checksums.txt and prints the checksums
//
// The platforms, archive names and build paths come from internal/krewrelease, which the
// manifest's tests use too.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/krewrelease"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "krew-release:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: krew-release platforms | package -version V -release-url URL -builds DIR -out DIR -template FILE [EXTRA...]")
	}
	switch args[0] {
	case "platforms":
		for _, p := range krewrelease.Platforms {
			fmt.Printf("%s %s %s\n", p.OS, p.Arch, p.BuildPath())
		}
		return nil
	case "package":
		return pack(args[1:])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func pack(args []string) error {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	version := fs.String("version", "", "release version, v1.2.3")
	url := fs.String("release-url", "", "where the archives are downloaded from")
	builds := fs.String("builds", "", "folder holding each platform's binary")
	out := fs.String("out", "", "folder for the archives and the rendered manifest")
	tmpl := fs.String("template", krewrelease.ManifestTemplate, "the manifest template")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *url == "" || *builds == "" || *out == "" {
		return fmt.Errorf("package needs -version, -release-url, -builds and -out")
	}
	// Reproducible archives: SOURCE_DATE_EPOCH when set.
	mod := time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		mod = time.Unix(n, 0)
	}
	sums, err := krewrelease.Package(krewrelease.Options{Version: *version, BuildDir: *builds, OutDir: *out, Extra: fs.Args(), ModTime: mod})
	if err != nil {
		return err
	}
	t, err := os.ReadFile(*tmpl)
	if err != nil {
		return err
	}
	manifest, err := krewrelease.Render(t, krewrelease.Values{Version: *version, ReleaseURL: *url, SHA256: sums})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, krewrelease.RenderedName), manifest, 0o644); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := krewrelease.WriteChecksums(&buf, *version, sums); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "checksums.txt"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	os.Stdout.Write(buf.Bytes())
	fmt.Printf("manifest: %s\n", filepath.Join(*out, krewrelease.RenderedName))
	return nil
}
