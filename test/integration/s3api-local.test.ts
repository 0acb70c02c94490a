/** The S3 front door on the embedded local backend (real clients; see test/support/s3api-suite.ts). */
import { frontDoorSuite } from '../support/s3api-suite.ts';

frontDoorSuite('the local backend', async () => ({ cache: '    Type = "local"' }));
