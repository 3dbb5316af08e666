package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEcho(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()

	res, err := http.Post(srv.URL+"/echo", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "hello" || res.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("POST /echo = %q (%s), want hello (text/plain)", body, res.Header.Get("Content-Type"))
	}

	res, err = http.Get(srv.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v["version"] != version || v["commit"] != commit {
		t.Errorf("GET /version = %v", v)
	}
}
