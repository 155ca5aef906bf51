// SPDX-License-Identifier: Apache-2.0
#include "fabric/version.h"

// Set for this file alone by fabric/CMakeLists.txt, so a new description
// recompiles one file.
#ifndef FABRIC_VERSION_DESCRIPTION
#error "FABRIC_VERSION_DESCRIPTION must be defined by the build"
#endif

namespace fabric {

const char* VersionDescription() { return FABRIC_VERSION_DESCRIPTION; }

}  // namespace fabric
