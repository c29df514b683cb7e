package main

// The table of tracked links, rebuilt from the compacted links topic on start and followed
// while the redirector runs (no consumer group: every redirector reads the whole topic), as
// producers/link_registry.py does for the Python redirector.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// link is schemas/links.py's LinkRegistration, as far as a redirect needs it. Records come
// from the Python producer API, which validated them with that model; a record that does not
// decode here is logged and skipped, as the Python registry does.
type link struct {
	LinkID       string     `json:"link_id"`
	Account      string     `json:"account"`
	Destination  string     `json:"destination"`
	ExpiresAt    *time.Time `json:"expires_at"`
	RegisteredAt time.Time  `json:"registered_at"`
	head, tail   string     // the redirect around the click id, computed once per link
}

func (l *link) expired(now time.Time) bool {
	return l.ExpiresAt != nil && !now.Before(*l.ExpiresAt)
}

func decodeLink(value []byte) (*link, error) {
	var l link
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, err
	}
	if l.LinkID == "" || l.Account == "" ||
		!(strings.HasPrefix(l.Destination, "http://") || strings.HasPrefix(l.Destination, "https://")) {
		return nil, fmt.Errorf("link record lacks link_id, account or an http(s) destination")
	}
	l.head, l.tail = redirectParts(l.Destination)
	return &l, nil
}

type registry struct {
	mu    sync.RWMutex
	links map[string]*link
}

func (r *registry) get(linkID string) *link {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.links[linkID]
}

func (r *registry) size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.links)
}

func (r *registry) apply(record *kgo.Record) {
	key := string(record.Key)
	if record.Value == nil { // tombstone: link withdrawn
		r.mu.Lock()
		delete(r.links, key)
		r.mu.Unlock()
		return
	}
	l, err := decodeLink(record.Value)
	if err != nil {
		log.Printf("link registry: bad record at offset %d: %v", record.Offset, err)
		return
	}
	r.mu.Lock()
	r.links[key] = l
	r.mu.Unlock()
}

// followLinks loads the topic up to the end offsets it had at start, then returns while a
// goroutine keeps following it until ctx ends.
func followLinks(ctx context.Context, bootstrap []string, topic string, timeout time.Duration) (*registry, error) {
	reg := &registry{links: map[string]*link{}}
	ends, err := endOffsets(ctx, bootstrap, topic, timeout)
	if err != nil {
		return nil, err
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, err
	}
	loaded := make(chan struct{})
	positions := map[int32]int64{}
	caughtUp := func() bool {
		for p, end := range ends {
			if positions[p] < end {
				return false
			}
		}
		return true
	}
	go func() {
		defer client.Close()
		done := false
		if caughtUp() {
			close(loaded)
			done = true
		}
		for ctx.Err() == nil {
			fetches := client.PollFetches(ctx)
			fetches.EachError(func(t string, p int32, err error) {
				if ctx.Err() == nil {
					log.Printf("link registry: %s[%d]: %v", t, p, err)
				}
			})
			fetches.EachRecord(func(record *kgo.Record) {
				reg.apply(record)
				positions[record.Partition] = record.Offset + 1
			})
			if !done && caughtUp() {
				close(loaded)
				done = true
			}
		}
	}()
	select {
	case <-loaded:
		return reg, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("link registry not loaded within %s", timeout)
	}
}

// endOffsets retries while a fresh topic's partitions have no leader yet.
func endOffsets(ctx context.Context, bootstrap []string, topic string, timeout time.Duration) (map[int32]int64, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	deadline := time.Now().Add(timeout)
	for {
		listed, err := admin.ListEndOffsets(ctx, topic)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			ends := map[int32]int64{}
			listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			if len(ends) == 0 {
				return nil, fmt.Errorf("topic %s does not exist: run `smsfunnel topics provision`", topic)
			}
			return ends, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
