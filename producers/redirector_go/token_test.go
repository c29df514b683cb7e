package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The vectors are written by the Python implementation (tests/vectors/generate.py); matching
// them is what keeps the two redirectors interchangeable.
type vectors struct {
	Key    string `json:"key"`
	Tokens []struct {
		Account, Token string
		LinkID         string `json:"link_id"`
		MessageID      string `json:"message_id"`
	} `json:"tokens"`
	InvalidTokens []struct{ Why, Account, Token string } `json:"invalid_tokens"`
	NetworkHashes []struct{ IP, Hash string }            `json:"network_hashes"`
	Redirects     []struct {
		Destination, Location string
		ClickID               string `json:"click_id"`
	} `json:"redirects"`
	ClickRecords []struct {
		ClickID       string         `json:"click_id"`
		Account       string         `json:"account"`
		MessageID     string         `json:"message_id"`
		LinkID        string         `json:"link_id"`
		Method        string         `json:"method"`
		IPHash        string         `json:"ip_hash"`
		UnixMicros    int64          `json:"occurred_at_unix_micros"`
		UserAgentHex  string         `json:"user_agent_hex"`
		ExpectedValue map[string]any `json:"record"`
	} `json:"click_records"`
}

func load(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile("../../tests/vectors/tracking_links.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) == 0 || len(v.InvalidTokens) == 0 || len(v.NetworkHashes) == 0 ||
		len(v.Redirects) == 0 || len(v.ClickRecords) == 0 {
		t.Fatal("vector file has an empty section")
	}
	return v
}

func TestValidTokensVerifyWithTheirClaims(t *testing.T) {
	v := load(t)
	for _, c := range v.Tokens {
		parsed, err := parseToken(c.Token)
		if err != nil {
			t.Fatalf("%s: %v", c.Token, err)
		}
		if parsed.linkID != c.LinkID || parsed.messageID != c.MessageID {
			t.Errorf("%s: claims (%q, %q), want (%q, %q)", c.Token, parsed.linkID, parsed.messageID, c.LinkID, c.MessageID)
		}
		if !parsed.verified([]byte(v.Key), c.Account) {
			t.Errorf("%s: signature refused", c.Token)
		}
		if parsed.verified([]byte(v.Key+"x"), c.Account) {
			t.Errorf("%s: verified under another key", c.Token)
		}
	}
}

func TestInvalidTokensAreRefused(t *testing.T) {
	v := load(t)
	for _, c := range v.InvalidTokens {
		parsed, err := parseToken(c.Token)
		if err == nil && parsed.verified([]byte(v.Key), c.Account) {
			t.Errorf("%s: token %q accepted", c.Why, c.Token)
		}
	}
}

func TestNetworkHashesMatch(t *testing.T) {
	v := load(t)
	for _, c := range v.NetworkHashes {
		if got := networkHash(c.IP, []byte(v.Key)); got != c.Hash {
			t.Errorf("%q: %q, want %q", c.IP, got, c.Hash)
		}
	}
}

func TestRedirectLocationsMatch(t *testing.T) {
	v := load(t)
	for _, c := range v.Redirects {
		head, tail := redirectParts(c.Destination)
		if got := head + c.ClickID + tail; got != c.Location {
			t.Errorf("%s: %s, want %s", c.Destination, got, c.Location)
		}
	}
}

func TestClickRecordsMatch(t *testing.T) {
	v := load(t)
	for _, c := range v.ClickRecords {
		ua, err := hex.DecodeString(c.UserAgentHex)
		if err != nil {
			t.Fatal(err)
		}
		at := time.UnixMicro(c.UnixMicros)
		raw := encodeClick(c.Account, c.MessageID, c.LinkID, c.ClickID, c.Method, string(ua), c.IPHash, at)
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !reflect.DeepEqual(got, c.ExpectedValue) {
			t.Errorf("record\n got %v\nwant %v", got, c.ExpectedValue)
		}
	}
}

func TestClickIDIsTokenPlusEightCharacterNonce(t *testing.T) {
	a, b := newClickID("tok"), newClickID("tok")
	if a == b || !strings.HasPrefix(a, "tok.") || len(a) != len("tok.")+8 {
		t.Errorf("click ids %q, %q", a, b)
	}
}

func FuzzParseTokenNeverPanics(f *testing.F) {
	f.Add("AARsbmsxbXNnLTQyODqPPxC_4a0")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		if parsed, err := parseToken(token); err == nil && !validAlphabet(token) {
			t.Errorf("accepted %q (%v)", token, parsed)
		}
	})
}
