package main

import (
	"context"
	"fmt"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// backend is what the data commands run against: the embedded database of
// --data, or a wpcdb server at --addr (backend_remote.go). Both give the
// same results, so every command prints the same output either way.
type backend interface {
	CreateCollection(ctx context.Context, name string, cfg wpcdb.CollectionConfig, sample *wpcsim.FeatureSample) (wpcdb.CollectionInfo, error)
	ListCollections(ctx context.Context) ([]wpcdb.CollectionInfo, error)
	DescribeCollection(ctx context.Context, name string) (wpcdb.CollectionInfo, error)
	DropCollection(ctx context.Context, name string) error
	Get(ctx context.Context, coll, id string) (wpcdb.Item, error)
	Delete(ctx context.Context, coll string, ids []string) (int, error)
	Search(ctx context.Context, coll string, q wpcsim.Cloud, opts wpcdb.SearchOptions) (hits, error)
	Rerank(ctx context.Context, coll string, q wpcsim.Cloud, ids []string) (hits, error)
	// Calibrate chooses the collection's first-stage representation by
	// measurement (queries nil: held-out items).
	Calibrate(ctx context.Context, coll string, queries []wpcsim.Cloud) (wpcdb.Calibration, error)
	GetMany(ctx context.Context, coll string, ids []string) ([]wpcdb.Item, []string, error)
	Scroll(ctx context.Context, coll string, opts wpcdb.ScrollOptions) (wpcdb.ScrollPage, error)
	Count(ctx context.Context, coll, filter string) (int, error)
	UpdateAttrs(ctx context.Context, coll, id string, set map[string]any, unset []string) (map[string]any, error)
	// Ingest opens a collection for batched upserts; close the target when
	// done.
	Ingest(ctx context.Context, coll string) (ingestTarget, error)
	snapshotter
	Close() error
}

// hits is a search's result with the collection's score mode, which says
// whether hits carry distances.
type hits struct {
	wpcdb.SearchResult
	score wpcsim.ScoreMode
}

// ingestTarget takes an ingest's batches: each UpsertWith is one durable,
// atomic batch (refused whole, with a *wpcdb.InvalidItem, unless skipping).
type ingestTarget interface {
	Config() wpcdb.CollectionConfig
	UpsertWith(ctx context.Context, items []wpcdb.Item, opts wpcdb.UpsertOptions) (wpcdb.UpsertResult, error)
	Close() error
}

// withBackend runs f against --addr's server, or else --data's embedded
// database, and closes it, keeping f's error.
func (a *app) withBackend(f func(b backend) error) error {
	var b backend
	if c := a.g.consistency; c != "" && c != "strong" {
		return usageError{fmt.Errorf("--consistency: %q is not a consistency; want strong (or nothing)", c)}
	}
	if a.g.addr != "" {
		r, err := a.dial()
		if err != nil {
			return err
		}
		b = r
	} else {
		if a.g.tlsCA != "" || a.g.tls {
			return usageError{errNoAddr}
		}
		db, err := a.openDB()
		if err != nil {
			return err
		}
		b = embedded{db: db, data: a.g.data}
	}
	err := f(b)
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}

// embedded is the backend of --data: the embedded API, in process.
type embedded struct {
	db   *wpcdb.DB
	data string // the data folder
}

func (e embedded) CreateCollection(ctx context.Context, name string, cfg wpcdb.CollectionConfig, sample *wpcsim.FeatureSample) (wpcdb.CollectionInfo, error) {
	var c *wpcdb.Collection
	var err error
	if sample != nil {
		c, err = e.db.CreateCollectionWithSample(ctx, name, cfg, *sample)
	} else {
		c, err = e.db.CreateCollection(ctx, name, cfg)
	}
	if err != nil {
		return wpcdb.CollectionInfo{}, err
	}
	return c.Describe(), nil
}

func (e embedded) ListCollections(ctx context.Context) ([]wpcdb.CollectionInfo, error) {
	return e.db.ListCollections()
}

func (e embedded) DescribeCollection(ctx context.Context, name string) (wpcdb.CollectionInfo, error) {
	c, err := e.db.Collection(name)
	if err != nil {
		return wpcdb.CollectionInfo{}, err
	}
	return c.Describe(), nil
}

func (e embedded) DropCollection(ctx context.Context, name string) error {
	return e.db.DropCollection(ctx, name)
}

func (e embedded) Get(ctx context.Context, coll, id string) (wpcdb.Item, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return wpcdb.Item{}, err
	}
	return c.Get(ctx, id)
}

func (e embedded) Delete(ctx context.Context, coll string, ids []string) (int, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return 0, err
	}
	return c.Delete(ctx, ids...)
}

func (e embedded) Search(ctx context.Context, coll string, q wpcsim.Cloud, opts wpcdb.SearchOptions) (hits, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return hits{}, err
	}
	res, err := c.Search(ctx, q, opts)
	return hits{res, c.Config().Similarity.Score}, err
}

func (e embedded) Rerank(ctx context.Context, coll string, q wpcsim.Cloud, ids []string) (hits, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return hits{}, err
	}
	res, err := c.Rerank(ctx, q, ids)
	return hits{res, c.Config().Similarity.Score}, err
}

func (e embedded) Calibrate(ctx context.Context, coll string, queries []wpcsim.Cloud) (wpcdb.Calibration, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return wpcdb.Calibration{}, err
	}
	return c.Calibrate(ctx, queries)
}

func (e embedded) GetMany(ctx context.Context, coll string, ids []string) ([]wpcdb.Item, []string, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return nil, nil, err
	}
	return c.GetMany(ctx, ids)
}

func (e embedded) Scroll(ctx context.Context, coll string, opts wpcdb.ScrollOptions) (wpcdb.ScrollPage, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return wpcdb.ScrollPage{}, err
	}
	return c.Scroll(ctx, opts)
}

func (e embedded) Count(ctx context.Context, coll, filter string) (int, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return 0, err
	}
	return c.CountFilter(ctx, filter)
}

func (e embedded) UpdateAttrs(ctx context.Context, coll, id string, set map[string]any, unset []string) (map[string]any, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return nil, err
	}
	return c.UpdateAttrs(ctx, id, set, unset)
}

func (e embedded) Ingest(ctx context.Context, coll string) (ingestTarget, error) {
	c, err := e.db.Collection(coll)
	if err != nil {
		return nil, err
	}
	return embeddedTarget{c}, nil
}

func (e embedded) Close() error { return e.db.Close() }

type embeddedTarget struct{ *wpcdb.Collection }

// Close ends the load: the collection calibrates its first stage if it has
// grown enough (wpcdb.Collection.LoadDone).
func (t embeddedTarget) Close() error { return t.LoadDone(context.Background()) }
