#ifndef FLOWCHAIN_CSODIUM_SHIM_H
#define FLOWCHAIN_CSODIUM_SHIM_H

#include <sodium.h>

#endif
