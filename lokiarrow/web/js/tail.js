// Live tail: Loki's `/loki/api/v1/tail` WebSocket, frames of `{streams, dropped_entries}`.

import { tailUrl, tenant } from "./api.js";
import { msToNs } from "./time.js";

export class LiveTail {
  constructor({ onEntries, onStatus }) {
    this.onEntries = onEntries;
    this.onStatus = onStatus;
    this.socket = null;
  }

  get running() { return this.socket !== null; }

  start(query, limit) {
    this.stop();
    const socket = new WebSocket(tailUrl({ query, limit, start: msToNs(Date.now()) }));
    this.socket = socket;
    let dropped = 0;
    socket.onopen = () => this.onStatus("live", "Following new lines…");
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      dropped += (frame.dropped_entries || []).length;
      this.onEntries(frame.streams || [], dropped);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      // Loki closes with 1011 and the error as the reason; an answer refused before the upgrade has none
      const refused = tenant()
        ? "the server refused the tail or went away (a browser cannot send X-Scope-OrgID on a WebSocket: " +
          "open this page through the gateway, whose login names the tenant)"
        : "the server refused the tail or went away";
      const reason = event.reason || (event.code === 1000 ? "" : refused);
      this.onStatus(reason ? "error" : "stopped", reason ? `Live tail ended: ${reason}` : "Live tail stopped");
    };
  }

  stop() {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.close(1000);
      this.onStatus("stopped", "Live tail stopped");
    }
  }
}
