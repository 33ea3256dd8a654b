// GLPK, the GNU Linear Programming Kit, from the system (Debian libglpk-dev): the LP/MILP solver
// behind `optimize.schedule`.
#ifndef ENCHUFE_CGLPK_SHIM_H
#define ENCHUFE_CGLPK_SHIM_H
#include <glpk.h>
#endif
