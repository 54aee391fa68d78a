package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func get(t *testing.T, url, accept string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	t.Setenv("POD_NAME", "web-1")
	t.Setenv("POD_NAMESPACE", "shop")
	t.Setenv("POD_IP", "10.42.0.7")
	t.Setenv("SHOP_SERVICE_HOST", "10.43.0.10")
	exited := make(chan int, 1)
	a := newApp()
	a.exit = func(code int) { exited <- code }
	srv := httptest.NewServer(a.routes())
	defer srv.Close()

	steps := []struct {
		path, accept string
		status       int
		contains     string
	}{
		{"/", "", 200, "skiff-demo 1: pod web-1, namespace shop, IP 10.42.0.7, request 1"},
		{"/", "text/html", 200, "<p>skiff-demo 1: pod web-1, namespace shop, IP 10.42.0.7, request 2</p>"},
		{"/any/path", "", 200, "path /any/path"},
		{"/healthz", "", 200, "ok"},
		{"/fail", "", 200, "fail"},
		{"/healthz", "", 500, "failing"},
		{"/recover", "", 200, "ok again"},
		{"/healthz", "", 200, "ok"},
		{"/env", "", 200, "SHOP_SERVICE_HOST=10.43.0.10"},
		{"/exit?code=300", "", 400, "0..255"},
		{"/exit?code=3", "", 200, "exiting with code 3"},
	}
	for _, s := range steps {
		status, body := get(t, srv.URL+s.path, s.accept)
		if status != s.status || !strings.Contains(body, s.contains) {
			t.Errorf("GET %s: %d %q, want %d containing %q", s.path, status, body, s.status, s.contains)
		}
	}
	select {
	case code := <-exited:
		if code != 3 {
			t.Errorf("exit code %d, want 3", code)
		}
	case <-time.After(2 * time.Second):
		t.Error("/exit did not exit")
	}
}

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(newApp().routes())
	defer srv.Close()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, msg := range []string{"hello", "", "skiff"} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.TextMessage || string(got) != msg {
			t.Errorf("echo of %q = %d %q", msg, typ, got)
		}
	}
}
