// libgpiod: 1.6 (Debian 12, Pi OS bookworm) or 2.x (Debian 13, Pi OS trixie). Swift never calls it
// directly: CFlowchainIO hides the two APIs behind one.
#include <gpiod.h>
