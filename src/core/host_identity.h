#pragma once
// What tells one machine from another: two processes with the same identity share its cores
// and memory bandwidth, so timings taken in both at once would disturb each other.
#include <string>

namespace ll {

// "hostname|machine-id" (either part may be empty when unknown). Processes in different UTS
// namespaces with different host names count as different machines, as emulated hosts are.
std::string host_identity();

}  // namespace ll
