package main

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

const userAgentMaxChars = 1000

// clickRecord is schemas/events.py's ClickEvent on the wire (the same fields, in the same
// order, as producers/redirector.py's click_record; the vectors check both parse alike).
type clickRecord struct {
	EventID    string `json:"event_id"`
	Account    string `json:"account"`
	OccurredAt string `json:"occurred_at"`
	MessageID  string `json:"message_id"`
	EventType  string `json:"event_type"`
	ClickID    string `json:"click_id"`
	LinkID     string `json:"link_id"`
	Method     string `json:"method"`
	UserAgent  string `json:"user_agent"`
	IPHash     string `json:"ip_hash"`
}

// userAgentText reads a header's bytes as Latin-1 (HTTP's historical charset, as the Python
// redirector does) so that any byte sequence becomes valid text, cut to the schema's limit.
func userAgentText(raw string) string {
	ascii := true
	for i := 0; i < len(raw); i++ {
		if raw[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		if len(raw) > userAgentMaxChars {
			return raw[:userAgentMaxChars]
		}
		return raw
	}
	n := min(len(raw), userAgentMaxChars)
	out := make([]rune, n)
	for i := 0; i < n; i++ {
		out[i] = rune(raw[i])
	}
	return string(out)
}

func encodeClick(account, messageID, linkID, clickID, method, userAgent, ipHash string, at time.Time) []byte {
	if method != "HEAD" {
		method = "GET"
	}
	record, err := json.Marshal(clickRecord{
		EventID:    clickID,
		Account:    account,
		OccurredAt: at.UTC().Format("2006-01-02T15:04:05.000000+00:00"),
		MessageID:  messageID,
		EventType:  "click",
		ClickID:    clickID,
		LinkID:     linkID,
		Method:     method,
		UserAgent:  userAgentText(userAgent),
		IPHash:     ipHash,
	})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return record
}
