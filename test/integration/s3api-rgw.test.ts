/** The S3 front door with Ceph RGW as the profile's backend (real clients; see test/support/s3api-suite.ts). */
import { rgw } from '../support/rgw.ts';
import { frontDoorSuite } from '../support/s3api-suite.ts';

frontDoorSuite('Ceph RGW as backend', async () => {
  const server = await rgw();
  const bucket = await server.bucket('s3api');
  return { cache: `    Type = "s3"\n${server.toml(bucket)}` };
});
