#define _GNU_SOURCE
#include "fio_sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_text(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, size - 1, f);
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (failed) { errno = saved ? saved : EIO; return -1; }
    buf[n] = 0;
    return 0;
}

static int read_number(const char *path, double *out) {
    char buf[64];
    if (read_text(path, buf, sizeof buf) < 0) return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || errno) { errno = EBADMSG; return -1; }
    while (*end == '\n' || *end == ' ') end++;
    if (*end) { errno = EBADMSG; return -1; }
    *out = v;
    return 0;
}

int fio_w1_parse(const char *text, double *celsius) {
    const char *nl = strchr(text, '\n');
    if (!nl || nl - text < 3 || strncmp(nl - 3, "YES", 3) != 0) { errno = EBADMSG; return -1; }
    const char *t = strstr(nl, "t=");
    if (!t) { errno = EBADMSG; return -1; }
    char *end = NULL;
    long milli = strtol(t + 2, &end, 10);
    if (end == t + 2) { errno = EBADMSG; return -1; }
    *celsius = milli / 1000.0;
    return 0;
}

int fio_w1_read(const char *root, const char *id, double *celsius) {
    char path[512], text[256];
    snprintf(path, sizeof path, "%s/bus/w1/devices/%s/w1_slave", root, id);
    if (read_text(path, text, sizeof text) < 0) return -1;
    return fio_w1_parse(text, celsius);
}

int fio_iio_find(const char *root, const char *which, char *out, size_t out_size) {
    char base[512];
    snprintf(base, sizeof base, "%s/bus/iio/devices", root);
    DIR *d = opendir(base);
    if (!d) return -1;
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "iio:device", 10) != 0) continue;
        char name_path[768], name[128];
        snprintf(name_path, sizeof name_path, "%s/%s/name", base, e->d_name);
        int by_id = strcmp(e->d_name, which) == 0;
        int by_name = read_text(name_path, name, sizeof name) == 0 && (name[strcspn(name, "\n")] = 0, strcmp(name, which) == 0);
        if (by_id || by_name) {
            snprintf(out, out_size, "%s/%s", base, e->d_name);
            found = 0;
            break;
        }
    }
    closedir(d);
    if (found < 0) errno = ENOENT;
    return found;
}

int fio_iio_channels(const char *dir, char *out, size_t out_size) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    out[0] = 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        size_t cut = 0;
        if (strncmp(n, "in_", 3) != 0) continue;
        if (len > 9 && strcmp(n + len - 6, "_input") == 0) cut = 6;
        else if (len > 7 && strcmp(n + len - 4, "_raw") == 0) cut = 4;
        else continue;
        char channel[128];
        snprintf(channel, sizeof channel, "%.*s", (int)(len - cut), n);
        // Listed once even when both _input and _raw exist.
        char probe[132];
        snprintf(probe, sizeof probe, ",%s,", channel);
        char padded[1024];
        snprintf(padded, sizeof padded, ",%s,", out);
        if (strstr(padded, probe)) continue;
        size_t used = strlen(out);
        snprintf(out + used, out_size - used, "%s%s", used ? "," : "", channel);
        count++;
    }
    closedir(d);
    return count;
}

// The IIO ABI gives temperatures in milli °C and relative humidity in milli %: recorded in °C
// and %, as the node's own reader does; other types in their ABI units (mV, mA, kPa, lx …).
static double unit_factor(const char *channel) {
    if (strncmp(channel, "in_temp", 7) == 0) return 0.001;
    if (strncmp(channel, "in_humidityrelative", 19) == 0) return 0.001;
    return 1;
}

int fio_iio_read(const char *dir, const char *channel, double *value) {
    char path[768];
    snprintf(path, sizeof path, "%s/%s_input", dir, channel);
    if (read_number(path, value) == 0) { *value *= unit_factor(channel); return 0; }
    if (errno != ENOENT) return -1;
    double raw;
    snprintf(path, sizeof path, "%s/%s_raw", dir, channel);
    if (read_number(path, &raw) < 0) return -1;
    // The channel's own scale/offset, else the type's shared one (in_voltage0 → in_voltage).
    char type[128];
    snprintf(type, sizeof type, "%s", channel);
    size_t t = strlen(type);
    while (t > 0 && type[t - 1] >= '0' && type[t - 1] <= '9') type[--t] = 0;
    double scale = 1, offset = 0;
    snprintf(path, sizeof path, "%s/%s_scale", dir, channel);
    if (read_number(path, &scale) < 0) {
        snprintf(path, sizeof path, "%s/%s_scale", dir, type);
        if (read_number(path, &scale) < 0) scale = 1;
    }
    snprintf(path, sizeof path, "%s/%s_offset", dir, channel);
    if (read_number(path, &offset) < 0) {
        snprintf(path, sizeof path, "%s/%s_offset", dir, type);
        if (read_number(path, &offset) < 0) offset = 0;
    }
    *value = (raw + offset) * scale * unit_factor(channel);
    return 0;
}
