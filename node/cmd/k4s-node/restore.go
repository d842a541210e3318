package main

// Restoring a datastore snapshot (snapshot.go) at boot: a server handed
// /etc/k4s/identity/datastore.snapshot (`pants run <target> -- -restore FILE`
// puts it into the identity archive; a device gets it the same way) loads it into
// its datastore once the datastore is up and before kube-apiserver starts, if
// the datastore holds no object yet (a fresh node, or a fresh data disk): the
// cluster's objects come back, with new revisions (clients list again).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// restoreFile is where a snapshot handed to the node at boot is.
var restoreFile = filepath.Join(identityDir, snapshotFile)

// restoreSnapshot loads the handed snapshot, if any, into the datastore.
func (n *node) restoreSnapshot() error {
	f, err := os.Open(restoreFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return &snapshotError{restoreFile, err.Error()}
	}
	meta, records, err := decodeSnapshot(restoreFile, f)
	f.Close()
	if err != nil {
		return err
	}
	c, kind, err := n.datastoreClient()
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	loaded, err := loadSnapshot(ctx, c, records)
	if errors.Is(err, errDatastoreNotEmpty) {
		log.Printf("datastore snapshot %s not restored: %s already holds the cluster's objects "+
			"(a snapshot is restored only into an empty datastore: a fresh node or a fresh data disk)", restoreFile, kind)
		return nil
	}
	if err != nil {
		return fmt.Errorf("restoring %s into %s: %w (boot again with a fresh data disk, or without the snapshot)", restoreFile, kind, err)
	}
	log.Printf("datastore snapshot restored into %s: %d keys (taken from %s at revision %d, %s) in %s",
		kind, loaded, meta.Datastore, meta.Revision, meta.Created, time.Since(start).Round(time.Millisecond))
	// It holds every Secret: do not keep it in RAM once restored.
	if err := os.Remove(restoreFile); err != nil {
		log.Printf("%v", err)
	}
	return nil
}

var errDatastoreNotEmpty = errors.New("the datastore holds objects")

// loadSnapshot creates every record's key, in an empty datastore only. Each
// key is one transaction "create if absent", the shape kine accepts (as
// kube-apiserver's creates), so a restore interrupted and run again completes.
func loadSnapshot(ctx context.Context, c clientv3.KV, records []kv) (int, error) {
	resp, err := c.Get(ctx, registryPrefix+"namespaces/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	if resp.Count > 0 {
		return 0, errDatastoreNotEmpty
	}
	// Namespaces last: until they are in, the datastore counts as empty, so a
	// restore that was interrupted (power cut) runs again at the next boot.
	var first, last []kv
	for _, r := range records {
		if strings.HasPrefix(string(r.key), registryPrefix+"namespaces/") {
			last = append(last, r)
		} else {
			first = append(first, r)
		}
	}
	for i, r := range append(first, last...) {
		key := string(r.key)
		_, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(r.value))).Commit()
		if err != nil {
			return i, fmt.Errorf("key %s: %w", key, err)
		}
	}
	return len(records), nil
}
