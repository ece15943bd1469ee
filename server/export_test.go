package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// EngineRoutes returns every route the hub's HTTP engine serves, however
// it was registered, as routes with a method and a path (gin syntax).
func (h *Hub) EngineRoutes() []Route {
	var out []Route
	for _, r := range h.engine.Routes() {
		out = append(out, Route{Method: r.Method, Path: r.Path})
	}
	return out
}

// WithMiddleware serves handler at GET path behind the hub's own
// middleware, the very list its engine uses ([Hub.middleware]), so that a
// test can make a handler misbehave as no real route does.
func (h *Hub) WithMiddleware(path string, handler gin.HandlerFunc) http.Handler {
	e := gin.New()
	e.Use(h.middleware()...)
	e.GET(path, handler)
	return e
}
