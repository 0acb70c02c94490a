/** The helper commands (SPEC §5), implemented in cache-archiver.ts / cache-extractor.ts. */
type HelperModule = { main: (argv: string[]) => Promise<number> };

async function load(path: string): Promise<HelperModule> {
  try {
    return (await import(path)) as HelperModule;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(path.slice(2))) {
      throw new Error(`${path.slice(2, -3)} is not available in this build`);
    }
    throw err;
  }
}

export const archiver = async (argv: string[]): Promise<number> => (await load('./cache-archiver.ts')).main(argv);
export const extractor = async (argv: string[]): Promise<number> => (await load('./cache-extractor.ts')).main(argv);
