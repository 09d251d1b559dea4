import { defineLibraryConfig } from '@box/tsup-config';
import { defineConfig } from 'tsup';

export default defineConfig(defineLibraryConfig());
