package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Devices (docs/devices.md): the member's homes, over the same app
// functions as `pursuance device …`. The JSON keys of a device are the
// CLI's.

type deviceJSON struct {
	Device  string  `json:"device"`
	Name    string  `json:"name"`
	Added   *string `json:"added"`
	Revoked bool    `json:"revoked"`
	This    bool    `json:"this"`
}

// devices answers this member's devices, and whether this home waits for
// an approval (it asked to be a device).
func (s *Server) devices(r *http.Request, n *app.Node) (any, error) {
	ds, err := n.Devices(r.Context())
	if err != nil {
		return nil, err
	}
	out := []deviceJSON{}
	for _, d := range ds {
		var added *string
		if d.Added != 0 {
			t := time.UnixMilli(int64(d.Added)).UTC().Format(time.RFC3339)
			added = &t
		}
		out = append(out, deviceJSON{d.Device.String(), d.Name, added, d.Revoked, d.This})
	}
	return map[string]any{"devices": out, "pending": n.DevicePending(), "member": n.Member().String()}, nil
}

// deviceApprove approves a request code: it answers the approval code.
func (s *Server) deviceApprove(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Code string `json:"code"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	req, err := app.ParseDeviceRequest(in.Code)
	if err != nil {
		return nil, err
	}
	code, err := n.ApproveDevice(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"approval": code, "name": req.Name}, nil
}

// deviceAccept makes this home the device an approval code names, and
// fetches its pursuances from their relays.
func (s *Server) deviceAccept(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Code string `json:"code"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	ctx := r.Context()
	fetch := func(ctx context.Context, p event.ID) error {
		_, err := n.Sync(ctx, p, app.SyncOptions{PullOnly: true})
		return err
	}
	ps, err := n.AcceptDevice(ctx, strings.TrimSpace(in.Code), fetch)
	for _, p := range ps {
		n.Sync(ctx, p, app.SyncOptions{Quick: true})
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"pursuances": len(ps)}, nil
}

// deviceRevoke revokes a device of this member and re-keys.
func (s *Server) deviceRevoke(r *http.Request, n *app.Node) (any, error) {
	d, err := identity.ParseMemberID(r.PathValue("d"))
	if err != nil {
		return nil, errors.New("name the device by its full key, as the list shows it")
	}
	ctx := r.Context()
	done, err := n.RevokeDevice(ctx, d)
	for _, p := range done {
		n.Sync(ctx, p, app.SyncOptions{Quick: true})
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"revoked_in": len(done)}, nil
}
