// The Flowchain sensor agent: the parts its unit tests reach (config, readings, the buffer).
#ifndef FLOWCHAIN_AGENT_H
#define FLOWCHAIN_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_MAX_SENSORS 32
#define AGENT_PAYLOAD_MAX 512

typedef enum { SENSOR_GPIO_INPUT, SENSOR_PULSE_COUNTER, SENSOR_IIO, SENSOR_W1 } sensor_type;

typedef struct sensor {
    sensor_type type;
    char device[64];      // the device id of its readings (the last topic level)
    char chip[64];        // GPIO: chip label, name or path
    unsigned offset;      // GPIO: line offset
    int bias;             // fio_bias
    bool active_low;
    int edge;             // fio_edge (pulse-counter)
    char source[64];      // iio: device id or driver name; w1: thermometer id
    double interval_s;    // pulse-counter, iio, w1
    // Running state.
    void *request;        // fio_request *
    uint64_t count;
    double next_due;      // monotonic seconds
    int failing;          // errno of the last failure, 0 when fine
} sensor;

typedef struct agent_config {
    char host[256];
    int port;
    char client_id[64];
    char prefix[192];
    char sysfs[256];
    char state_path[256];
    size_t buffer;        // readings held at most while the broker is away
    int qos;
    sensor sensors[AGENT_MAX_SENSORS];
    int sensor_count;
} agent_config;

/// Parses the config text; 0, or -1 with `error` naming the line and the problem.
int agent_parse_config(const char *text, agent_config *out, char *error, size_t error_size);

/// One reading waiting to be published (or in flight, `mid` > 0).
typedef struct pending {
    char topic[256];
    char payload[AGENT_PAYLOAD_MAX];
    int mid;
} pending;

/// A bounded FIFO of readings: when full, the oldest waiting one is dropped and counted.
typedef struct reading_buffer {
    pending *items;
    size_t capacity, head, count;
    uint64_t dropped;       // total dropped since start
    uint64_t dropped_unreported;
} reading_buffer;

int buffer_init(reading_buffer *b, size_t capacity);
/// Adds a reading; returns 1 when the oldest was dropped to make room.
int buffer_push(reading_buffer *b, const char *topic, const char *payload);
pending *buffer_at(reading_buffer *b, size_t i);
/// Removes the entry published with `mid`; returns whether it was there.
bool buffer_ack(reading_buffer *b, int mid);
/// After a disconnect: whatever was in flight is sent again.
void buffer_unsend(reading_buffer *b);

/// `{"seq":N,"time":ms,"timeSynced":b,<fields>}` into out; `fields` is JSON members without braces.
int agent_payload(char *out, size_t size, uint64_t seq, int64_t time_ms, bool synced, const char *fields);

#endif
