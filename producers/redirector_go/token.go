package main

// Tracking-link tokens and click ids, the verifying half of producers/tracking_links.py.
// Both implementations are held to tests/vectors/tracking_links.json (written by the Python
// side, read by token_test.go), so a token minted in Python verifies here byte for byte.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"
)

const (
	macBytes        = 8
	clickNonceBytes = 6
	clickIDParam    = "smsclid"
	kindText        = 0
	kindUUID        = 1
)

var errInvalidToken = errors.New("invalid token")

// parsedToken is decoded but not yet verified: its link id says which account to verify with.
type parsedToken struct {
	linkID    string
	messageID string
	payload   []byte
	mac       []byte
}

func validAlphabet(token string) bool {
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func parseToken(token string) (parsedToken, error) {
	if !validAlphabet(token) {
		return parsedToken{}, errInvalidToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 2+macBytes {
		return parsedToken{}, errInvalidToken
	}
	payload, mac := raw[:len(raw)-macBytes], raw[len(raw)-macBytes:]
	kind, linkLen := payload[0], int(payload[1])
	if len(payload) < 2+linkLen+1 {
		return parsedToken{}, errInvalidToken
	}
	link, mid := payload[2:2+linkLen], payload[2+linkLen:]
	if !utf8.Valid(link) {
		return parsedToken{}, errInvalidToken
	}
	var messageID string
	switch {
	case kind == kindUUID && len(mid) == 16:
		messageID = formatUUID(mid)
	case kind == kindText:
		if !utf8.Valid(mid) {
			return parsedToken{}, errInvalidToken
		}
		messageID = string(mid)
	default:
		return parsedToken{}, errInvalidToken
	}
	return parsedToken{linkID: string(link), messageID: messageID, payload: payload, mac: mac}, nil
}

func formatUUID(b []byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

func tokenMAC(key []byte, account string, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(account))
	h.Write([]byte{0x1f})
	h.Write(payload)
	return h.Sum(nil)[:macBytes]
}

// verified checks the MAC against the account that owns the token's link.
func (t parsedToken) verified(key []byte, account string) bool {
	return hmac.Equal(t.mac, tokenMAC(key, account, t.payload))
}

func newClickID(token string) string {
	var nonce [clickNonceBytes]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return token + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
}

// redirectParts splits a destination into (everything up to the click id's value, the
// fragment after it). The query is kept byte for byte (UTM parameters intact). Destinations
// come normalised from the links topic (pydantic's URL form), where this equals Python's
// urlsplit/urlunsplit rebuild: the vectors check it.
func redirectParts(destination string) (string, string) {
	head, fragment, hasFragment := strings.Cut(destination, "#")
	tail := ""
	if hasFragment && fragment != "" {
		tail = "#" + fragment
	}
	base, query, hasQuery := strings.Cut(head, "?")
	param := clickIDParam + "="
	if hasQuery && query != "" {
		return base + "?" + query + "&" + param, tail
	}
	return base + "?" + param, tail
}

// networkHash is a keyed hash of the client's /24 (IPv4) or /48 (IPv6): enough to tell
// scanners' networks apart, not enough to name a person.
func networkHash(clientIP string, key []byte) string {
	addr, err := netip.ParseAddr(clientIP)
	if err != nil || addr.Zone() != "" {
		return ""
	}
	bits := 24
	if addr.Is6() {
		bits = 48
	}
	prefix, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte(prefix.String()))
	return hex.EncodeToString(h.Sum(nil))[:16]
}
