// The click redirector, compiled: GET /<token> → 302 to the link's destination with its query
// intact and a click id appended, the click handed to Kafka without waiting for it.
//
// `smsfunnel redirector` starts this binary (SMSFUNNEL_REDIRECTOR_IMPL=go) with the topic names
// and settings resolved by the Python side (smsfunnel/cli.py), so topics and settings keep one
// source of truth; the keys arrive in the environment, not on the command line.
//
// What a crash can lose: clicks buffered but not yet acknowledged by Kafka, i.e. the last
// linger (SMSFUNNEL_REDIRECTOR_LINGER_MS) plus the broker's acknowledgement time, and, while
// the broker is unreachable, up to -queue-limit clicks. smsfunnel_redirector_clicks_buffered
// shows the figure live; smsfunnel_redirector_clicks_lost_total counts clicks Kafka refused.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	clicksTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsfunnel_redirector_clicks_total",
		Help: "Requests for tracking links, by outcome.",
	}, []string{"outcome"})
	clicksLost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "smsfunnel_redirector_clicks_lost_total",
		Help: "Clicks redirected but never acknowledged by Kafka (queue full or delivery failed).",
	})
	redirected = clicksTotal.WithLabelValues("redirected")
	notFound   = clicksTotal.WithLabelValues("not_found")
)

type redirector struct {
	linkKey, ipKey []byte
	clicksTopic    string
	links          *registry
	producer       *kgo.Client
	metrics        http.Handler
}

var notFoundBody = []byte("unknown or expired link\n")

func (s *redirector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		s.metrics.ServeHTTP(w, r)
		return
	case "/health":
		w.Write([]byte("ok\n"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	location, ok := s.click(strings.TrimLeft(r.URL.Path, "/"), r.Method, r.Header.Get("User-Agent"), r.RemoteAddr)
	h := w.Header()
	if !ok {
		notFound.Inc()
		h["Content-Type"] = []string{"text/plain"}
		w.WriteHeader(http.StatusNotFound)
		w.Write(notFoundBody)
		return
	}
	redirected.Inc()
	h["Location"] = []string{location}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusFound)
}

// click returns the redirect location, or false for a token that must get a 404: unknown,
// tampered, signed for another account, or expired.
func (s *redirector) click(token, method, userAgent, remoteAddr string) (string, bool) {
	parsed, err := parseToken(token)
	if err != nil {
		return "", false
	}
	l := s.links.get(parsed.linkID)
	if l == nil || !parsed.verified(s.linkKey, l.Account) {
		return "", false
	}
	now := time.Now()
	if l.expired(now) {
		return "", false
	}
	clickID := newClickID(token)
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	record := &kgo.Record{
		Topic: s.clicksTopic,
		Key:   []byte(parsed.messageID),
		Value: encodeClick(l.Account, parsed.messageID, parsed.linkID, clickID, method, userAgent, networkHash(host, s.ipKey), now),
	}
	// TryProduce never blocks the person: with the buffer full the click is counted as lost
	// and the redirect still goes out.
	s.producer.TryProduce(context.Background(), record, func(_ *kgo.Record, err error) {
		if err != nil {
			clicksLost.Inc()
		}
	})
	return l.head + clickID + l.tail, true
}

func requireEnv(name string) []byte {
	value := os.Getenv(name)
	if value == "" {
		log.Fatalf("%s is not set (smsfunnel redirector sets it from the settings)", name)
	}
	return []byte(value)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9104", "host:port to serve on (0.0.0.0:9104: every interface)")
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	linksTopic := flag.String("links-topic", "", "the compacted topic of tracked links")
	clicksTopic := flag.String("clicks-topic", "", "the topic clicks go to")
	lingerMs := flag.Int("linger-ms", 10, "how long clicks gather before going to Kafka")
	queueLimit := flag.Int("queue-limit", 100_000, "clicks buffered at most while Kafka is slow or away")
	startTimeout := flag.Duration("start-timeout", 60*time.Second, "how long to wait for the links topic")
	flag.Parse()
	if *linksTopic == "" || *clicksTopic == "" {
		log.Fatal("-links-topic and -clicks-topic are required")
	}
	log.SetFlags(log.LstdFlags | log.LUTC)
	seeds := strings.Split(*bootstrap, ",")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	links, err := followLinks(ctx, seeds, *linksTopic, *startTimeout)
	if err != nil {
		log.Fatalf("link registry: %v", err)
	}
	// acks=all and idempotence are franz-go's defaults; the partitioner is its Kafka-compatible
	// murmur2 on the key (schemas/topics.py KAFKA_PARTITIONER), so a click lands on its
	// message's partition, where the join holds that message's state.
	producer, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Duration(*lingerMs)*time.Millisecond),
		kgo.MaxBufferedRecords(*queueLimit),
		kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	if err != nil {
		log.Fatalf("producer: %v", err)
	}
	s := &redirector{
		linkKey:     requireEnv("SMSFUNNEL_LINK_SIGNING_KEY"),
		ipKey:       requireEnv("SMSFUNNEL_PHONE_HASH_KEY"),
		clicksTopic: *clicksTopic,
		links:       links,
		producer:    producer,
		metrics:     promhttp.Handler(),
	}
	prometheus.MustRegister(clicksTotal, clicksLost,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smsfunnel_redirector_clicks_buffered",
			Help: "Clicks handed to the producer and not yet acknowledged by Kafka: what a crash now would lose.",
		}, func() float64 { return float64(producer.BufferedProduceRecords()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smsfunnel_redirector_links",
			Help: "Tracked links the redirector knows.",
		}, func() float64 { return float64(links.size()) }),
	)
	server := &http.Server{Addr: *listen, Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		server.Shutdown(shutdown)
	}()
	log.Printf("redirector serving on %s (%d links)", *listen, links.size())
	if err := server.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
	// Graceful stop: whatever is still buffered goes to Kafka before the process exits.
	flush, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := producer.Flush(flush); err != nil {
		log.Printf("flush on stop: %v (%d clicks unacknowledged)", err, producer.BufferedProduceRecords())
	}
	producer.Close()
	log.Printf("redirector stopped")
}
