#include "CFuzzHash.h"
