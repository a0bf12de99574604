// The installed headers must compile as C++ too (and as C, which every
// other test does).  Nothing here runs; building it is the test.
#include <ferry/ferry.h>
#include <ferry/token.h>
#include <ferry/trace.h>
#include <ferry/metrics.h>

int main()
{
	struct ferry_ep_config cfg;

	ferry_ep_config_init(&cfg);
	return ferry_strerror(-FERRY_ENOMETHOD) ? 0 : 1;
}
