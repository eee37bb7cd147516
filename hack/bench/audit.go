package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// auditEvent is the part of an audit.k8s.io/v1 Event the summary reads.
type auditEvent struct {
	Verb      string `json:"verb"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceived time.Time `json:"requestReceivedTimestamp"`
	Stage           string    `json:"stage"`
}

// summarizeAudit counts the operator's requests received in [from, to] by
// "verb resource[/subresource] code" (with -audit, the API server logs only the operator's).
func summarizeAudit(path string, from, to time.Time) map[string]float64 {
	f, err := os.Open(path)
	if err != nil {
		return map[string]float64{"error: " + err.Error(): 1}
	}
	defer f.Close()
	out := map[string]float64{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for s.Scan() {
		var e auditEvent
		if err := json.Unmarshal(s.Bytes(), &e); err != nil || e.Stage != "ResponseComplete" {
			continue
		}
		if e.RequestReceived.Before(from) || e.RequestReceived.After(to) {
			continue
		}
		what := e.Verb
		if e.ObjectRef == nil {
			what += " (non-resource)"
		} else {
			what += " " + e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				what += "/" + e.ObjectRef.Subresource
			}
		}
		if e.ResponseStatus != nil {
			what += fmt.Sprintf(" %d", e.ResponseStatus.Code)
		}
		out[what]++
	}
	return out
}
