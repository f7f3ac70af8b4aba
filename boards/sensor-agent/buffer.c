// The agent's bounded reading buffer and payload format (no I/O: unit-tested on every arch).
#include "agent.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buffer_init(reading_buffer *b, size_t capacity) {
    memset(b, 0, sizeof *b);
    b->items = calloc(capacity ? capacity : 1, sizeof(pending));
    if (!b->items) return -1;
    b->capacity = capacity ? capacity : 1;
    return 0;
}

pending *buffer_at(reading_buffer *b, size_t i) { return &b->items[(b->head + i) % b->capacity]; }

int buffer_push(reading_buffer *b, const char *topic, const char *payload) {
    int dropped = 0;
    if (b->count == b->capacity) {
        // Full: the oldest reading goes (an in-flight one too: its PUBACK, if any, finds nothing).
        b->head = (b->head + 1) % b->capacity;
        b->count--;
        b->dropped++;
        b->dropped_unreported++;
        dropped = 1;
    }
    pending *p = buffer_at(b, b->count);
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    snprintf(p->payload, sizeof p->payload, "%s", payload);
    p->mid = 0;
    b->count++;
    return dropped;
}

bool buffer_ack(reading_buffer *b, int mid) {
    for (size_t i = 0; i < b->count; i++) {
        if (buffer_at(b, i)->mid != mid) continue;
        // Move the entries before it up by one, keeping their order, then drop the head.
        for (size_t j = i; j > 0; j--) *buffer_at(b, j) = *buffer_at(b, j - 1);
        b->head = (b->head + 1) % b->capacity;
        b->count--;
        return true;
    }
    return false;
}

void buffer_unsend(reading_buffer *b) {
    for (size_t i = 0; i < b->count; i++) buffer_at(b, i)->mid = 0;
}

int agent_payload(char *out, size_t size, uint64_t seq, int64_t time_ms, bool synced, const char *fields) {
    int n = snprintf(out, size, "{\"seq\":%" PRIu64 ",\"time\":%" PRId64 ",\"timeSynced\":%s%s%s}", seq, time_ms,
                     synced ? "true" : "false", fields && *fields ? "," : "", fields ? fields : "");
    return (n < 0 || (size_t)n >= size) ? -1 : n;
}
