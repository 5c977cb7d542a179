// Stands in for '@tensorflow/tfjs-core' in the page's bundle (build.mjs aliases it here).
// The package index also registers optimizers and every chained op; the page only runs a
// graph model forward, so it takes the side-effect-free `base` plus the engine/platform set-up.
import '@tensorflow/tfjs-core/dist/base_side_effects';

export * from '@tensorflow/tfjs-core/dist/base';
