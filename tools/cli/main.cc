// SPDX-License-Identifier: Apache-2.0
// Entry point of the `fabric` command. All logic lives in tools/cli/.
#include "tools/cli/cli.h"

int main(int argc, char** argv) { return fabric::cli::Run(argc, argv); }
