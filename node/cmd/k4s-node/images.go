package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// The appliance has no registry: the initramfs carries OCI image archives
// (the `images` field of its initramfs target, built by `oci_image` targets)
// in imagesDir, and k4s-node imports them into containerd's k8s.io namespace
// at boot, as k3s imports its agent/images tarballs. pauseImage, the
// sandbox image containerd's CRI uses, must be one of them.
const (
	imagesDir  = "/var/lib/k4s/images"
	pauseImage = "k4s.local/pause:v1"
)

// importImages imports and unpacks every archive in imagesDir.
func importImages() error {
	start := time.Now()
	archives, _ := filepath.Glob(filepath.Join(imagesDir, "*.tar"))
	if len(archives) == 0 {
		log.Printf("no image archives in %s: pods cannot start without a registry (and containerd "+
			"has no sandbox image %s). Add oci_image targets to the initramfs `images` field.", imagesDir, pauseImage)
		return nil
	}
	client, err := containerd.New("/run/containerd/containerd.sock")
	if err != nil {
		return err
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	for _, a := range archives {
		f, err := os.Open(a)
		if err != nil {
			return err
		}
		imgs, err := client.Import(ctx, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("import %s: %w", a, err)
		}
		for _, img := range imgs {
			if err := containerd.NewImage(client, img).Unpack(ctx, "overlayfs"); err != nil {
				return fmt.Errorf("unpack %s from %s: %w", img.Name, a, err)
			}
			log.Printf("image %s imported from %s", img.Name, filepath.Base(a))
		}
	}
	log.Printf("images ready after %s", time.Since(start).Round(time.Second))
	return nil
}
