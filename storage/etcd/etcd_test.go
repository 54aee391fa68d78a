package etcd_test

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/skiff-sh/skiff/storage"
	"github.com/skiff-sh/skiff/storage/etcd"
	"github.com/skiff-sh/skiff/storage/etcdtest"
	"github.com/skiff-sh/skiff/storage/storagetest"
)

// progressInterval keeps the suite's progress test short.
const progressInterval = 100 * time.Millisecond

func TestEmbeddedConformance(t *testing.T) {
	emb := etcdtest.StartEmbedded(t)
	storagetest.Run(t, func(t *testing.T) storage.Interface {
		c := emb.Client()
		if c == nil {
			t.Fatal("embedded etcd gave no client")
		}
		return closing(t, etcd.New(c, etcd.WithProgressInterval(progressInterval)))
	})
}

func TestExternalConformance(t *testing.T) {
	endpoints := etcdtest.StartExternal(t)
	storagetest.Run(t, func(t *testing.T) storage.Interface {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			t.Fatalf("etcd client: %v", err)
		}
		return closing(t, etcd.New(c, etcd.WithProgressInterval(progressInterval)))
	})
}

// closing closes s when the test ends and checks that Close works.
func closing(t *testing.T, s storage.Interface) storage.Interface {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
