// Reading Linux IIO channels and 1-Wire thermometers from sysfs, for the C sensor agent (the
// Swift node has its own reader in Sources/Sensors/Sysfs with the same rules). `root` is where
// sysfs is mounted ("/sys"; a test gives a directory shaped like it).
#ifndef FIO_SYSFS_H
#define FIO_SYSFS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A DS18B20-style `w1_slave` text: 0 with *celsius set when the kernel's CRC check says YES;
/// -1 with errno EBADMSG (CRC NO or garbled) otherwise.
int fio_w1_parse(const char *text, double *celsius);
/// Reads <root>/bus/w1/devices/<id>/w1_slave; -1 with errno (ENOENT: not on the bus, EIO, EBADMSG).
int fio_w1_read(const char *root, const char *id, double *celsius);

/// The IIO device directory of `which` (iio:device0, or a driver name such as dht11) under
/// <root>/bus/iio/devices: 0 and `out` filled, or -1 with errno ENOENT.
int fio_iio_find(const char *root, const char *which, char *out, size_t out_size);
/// Channel names of an IIO device directory (in_temp, in_humidityrelative …), comma-separated in
/// `out`; returns how many.
int fio_iio_channels(const char *dir, char *out, size_t out_size);
/// One channel's value: in_<ch>_input, else (in_<ch>_raw + offset) × scale, with the
/// channel's own or the type's shared _scale/_offset; temperatures (milli °C) and relative
/// humidity (milli %) in °C and %. 0, or -1 with errno.
int fio_iio_read(const char *dir, const char *channel, double *value);

#ifdef __cplusplus
}
#endif

#endif
